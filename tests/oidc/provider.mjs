// A real OpenID Connect provider (node oidc-provider) on loopback for the
// single sign-on tests. Usage:
//   node provider.mjs PORT REDIRECT_URI CLIENT_SECRET
// Prints "ready" once listening. Who signs in is set by the test with
// GET /test/as/<account> (accounts below); login and consent then finish
// without a form, as a person clicking through would.
import Provider from 'oidc-provider';

const [port, redirectUri, secret] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const accounts = {
  alice: { preferred_username: 'alice', name: 'Alice Admin', email: 'alice@example.com', groups: ['platform-admins', 'staff'] },
  bob: { preferred_username: 'bob', name: 'Bob Builder', email: 'bob@example.com', groups: ['staff'] },
  carol: { preferred_username: 'carol', name: 'Carol', email: 'carol@example.com', groups: [] },
};
let current = 'alice';

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'agentry',
    client_secret: secret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email'],
    groups: ['groups'],
  },
  scopes: ['openid', 'profile', 'email', 'groups'],
  // Scope-granted claims in the ID token itself.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  pkce: { required: () => true },
  async findAccount(ctx, id) {
    const a = accounts[id];
    if (!a) return undefined;
    return { accountId: id, async claims() { return { sub: `sub-${id}`, ...a }; } };
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
});
provider.proxy = false;

const handler = provider.callback();
const server = (await import('node:http')).createServer(async (req, res) => {
  try {
    const url = new URL(req.url, issuer);
    if (url.pathname.startsWith('/test/groups/')) {
      const id = url.pathname.slice('/test/groups/'.length);
      accounts[id].groups = (url.searchParams.get('set') || '').split(',').filter(Boolean);
      res.end('ok');
      return;
    }
    if (url.pathname.startsWith('/test/as/')) {
      current = url.pathname.slice('/test/as/'.length);
      res.end('ok');
      return;
    }
    if (url.pathname.startsWith('/interaction/')) {
      const details = await provider.interactionDetails(req, res);
      if (details.prompt.name === 'login') {
        await provider.interactionFinished(req, res, { login: { accountId: current } }, { mergeWithLastSubmission: false });
        return;
      }
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
      grant.addOIDCScope(details.params.scope);
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      return;
    }
    handler(req, res);
  } catch (e) {
    res.statusCode = 500;
    res.end(String(e && e.stack || e));
  }
});
server.listen(Number(port), '127.0.0.1', () => console.log('ready'));
