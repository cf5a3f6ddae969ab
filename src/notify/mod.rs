//! Notification channels: their settings, the payload each one sends, and
//! the delivery of one message.
//!
//! Domain code, no HTTP server: the payloads and [`deliver`] are pure apart
//! from the network; [`store`] keeps channels (secrets encrypted) and
//! [`outbox`] the notifications, both through `db`. The outbox (persisted,
//! retried with backoff) stores a [`Message`] as JSON and calls [`deliver`]
//! for each attempt; [`Outcome`] tells it whether to mark the row delivered,
//! retry it later or mark it failed.
//!
//! - [`channel`]: `{email, slack, pagerduty, webhook}` settings, validated
//!   from user JSON with per-field errors, split into public and secret
//!   parts (secrets are stored encrypted by the caller, never printed).
//! - [`message`]: what every payload is rendered from.
//! - [`slack`], [`pagerduty`], [`webhook`], [`email`]: the payloads
//!   (incoming-webhook blocks, Events API v2, Alertmanager webhook v4 with
//!   an HMAC-SHA256 `X-Agentry-Signature`, plain-text email).
//! - [`deliver`](mod@deliver): one attempt, classified.
//!
//! Every attempt of a message carries the same idempotency key, the
//! message id: the `Idempotency-Key` header on HTTP, `idempotencyKey` in the
//! webhook body, `Message-ID: <id@agentry>` and `X-Agentry-Notification-Id`
//! on email. Delivery is at least once; receivers deduplicate on it.

pub use crate::db::notifications::DeliveryStatus;

pub mod channel;
pub mod deliver;
pub mod email;
pub mod message;
pub mod outbox;
pub mod pagerduty;
pub mod retry;
pub mod slack;
pub mod store;
pub mod webhook;

pub use channel::{
    ChannelType, EmailSettings, FieldError, PagerdutySettings, Settings, SlackSettings, Tls,
    WebhookSettings, PAGERDUTY_EVENTS_URL,
};
pub use deliver::{deliver, Outcome, IDEMPOTENCY_KEY_HEADER};
pub use message::{AlertView, Kind, Message, USER_AGENT};
pub use webhook::SIGNATURE_HEADER;
