//! `agentry serve` (the default): the appliance until a signal stops it, and
//! the first admin's password printed once.

use super::*;

pub(super) fn serve(config: Config) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(config.database.blocking_threads())
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        let mut signals = ShutdownSignals::register()?;
        let listener = std::net::TcpListener::bind(config.listen)
            .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        let mut running = crate::start(config, listener)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(admin) = &running.seeded.admin {
            print_first_admin(admin, &running.app.config.base_url());
        }
        tokio::select! {
            sig = signals.recv() => {
                tracing::info!(signal = sig, "shutting down: finishing in-flight requests");
                running.stop().await;
                tracing::info!("stopped");
                Ok(())
            }
            r = running.wait() => r.map_err(|e| format!("HTTP server failed: {e}")),
        }
    })
}

fn print_first_admin(admin: &crate::bootstrap::FirstAdmin, url: &str) {
    let banner = match &admin.generated_password {
        Some(pw) => format!(
            "\nagentry: created the first administrator\n  sign in at: {url}/login\n  user:       {}\n  password:   {}\n\
             This password is shown only once. Keep it safe or reset it with `agentry admin reset-password`.\n\n",
            admin.username,
            pw.expose_secret()
        ),
        None => format!(
            "\nagentry: created the first administrator `{}` with the password from {}\n  sign in at: {url}/login\n\n",
            admin.username,
            crate::config::ENV_ADMIN_PASSWORD
        ),
    };
    // One write: `println!` hands stdout one piece at a time, and under
    // systemd the log lines on stderr were interleaved into the banner.
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
}

/// SIGTERM and SIGINT, registered before start-up: a stop that arrives
/// right after READY=1 must already find the handlers in place.
struct ShutdownSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn register() -> Result<ShutdownSignals, String> {
        use tokio::signal::unix::{signal, SignalKind};
        let err = |e: std::io::Error| format!("cannot install signal handlers: {e}");
        Ok(ShutdownSignals {
            term: signal(SignalKind::terminate()).map_err(err)?,
            int: signal(SignalKind::interrupt()).map_err(err)?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
