-- agentry schema v16: disabling an OAuth client voids its access tokens.

-- Access tokens issued to the client before this time are refused, like a
-- principal's tokens_not_before: set when an admin disables the client and
-- kept when it is enabled again.
ALTER TABLE oauth_clients ADD COLUMN tokens_not_before INTEGER;
