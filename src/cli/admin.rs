//! `agentry admin create`, `reset-password` and `reset-second-factor`: the
//! break-glass path to an administrator, the password from a prompt or
//! standard input.

use super::*;

fn read_new_password(username: &str, from_stdin: bool) -> Result<Zeroizing<String>, String> {
    let password = if from_stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_string())
    } else {
        if !std::io::stdin().is_terminal() {
            return Err(
                "no terminal to prompt on; pass --password-stdin and pipe the password".into(),
            );
        }
        let first = Zeroizing::new(
            rpassword::prompt_password(format!("New password for {username}: "))
                .map_err(|e| e.to_string())?,
        );
        let again =
            Zeroizing::new(rpassword::prompt_password("Repeat it: ").map_err(|e| e.to_string())?);
        if *first != *again {
            return Err("the passwords differ".into());
        }
        first
    };
    passwords::check_policy(username, &password).map_err(|m| format!("password {m}"))?;
    Ok(password)
}

pub(super) fn admin_create(config: &Config, a: AdminArgs) -> Result<(), String> {
    validate_username(&a.username).map_err(|m| format!("user name {m}"))?;
    let Opened {
        mut conn,
        chain: key,
        ..
    } = open_for_cli(config)?;
    let exists = users::by_username(&conn, &a.username)
        .map_err(|e| e.to_string())?
        .is_some();
    if exists {
        return Err(format!(
            "user {} already exists; use `admin reset-password`",
            a.username
        ));
    }
    let password = read_new_password(&a.username, a.password_stdin)?;
    let hash = passwords::hash_sync(&password).map_err(|e| e.to_string())?;
    let id = db::new_id();
    let event = cli_context()
        .event("user.create", Outcome::Success)
        .target(crate::identity::PrincipalKind::User.as_str(), id.clone())
        .detail("username", &a.username)
        .detail("roles", [SYSTEM_ADMIN]);
    audited(&mut conn, &key, event, |tx| {
        bootstrap::insert_admin(tx, &id, &a.username, "", hash, db::now_ms())
    })?;
    println!(
        "created user {} (id {id}) with the {SYSTEM_ADMIN} role",
        a.username
    );
    Ok(())
}

pub(super) fn admin_reset_password(config: &Config, a: AdminArgs) -> Result<(), String> {
    let Opened {
        mut conn,
        chain: key,
        ..
    } = open_for_cli(config)?;
    let user = users::by_username(&conn, &a.username)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no user named {}", a.username))?;
    let password = read_new_password(&user.username, a.password_stdin)?;
    let hash = passwords::hash_sync(&password).map_err(|e| e.to_string())?;
    let event = cli_context()
        .event("user.password.reset", Outcome::Success)
        .target(crate::identity::PrincipalKind::User.as_str(), &user.id)
        .detail("unlocked", true);
    let ended = audited(&mut conn, &key, event, |tx| {
        users::set_password(tx, &user.id, &hash, db::now_ms())?;
        sessions::delete_for_user(tx, &user.id)
    })?;
    println!(
        "password of {} reset; account unlocked; {ended} session(s) ended; \
         second factors kept (clear them with `agentry admin reset-second-factor`)",
        user.username
    );
    Ok(())
}

pub(super) fn admin_reset_second_factor(config: &Config, username: &str) -> Result<(), String> {
    let Opened {
        mut conn,
        chain: key,
        ..
    } = open_for_cli(config)?;
    let user = users::by_username(&conn, username)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no user named {username}"))?;
    let event = cli_context()
        .event("auth.factor_reset", Outcome::Success)
        .target(crate::identity::PrincipalKind::User.as_str(), &user.id)
        .detail("via", "cli");
    let (factors, ended) = audited(&mut conn, &key, event, |tx| {
        crate::db::recovery_codes::delete_all(tx, &user.id)?;
        let factors = crate::db::factors::delete_all(tx, &user.id)?;
        Ok((factors, sessions::delete_for_user(tx, &user.id)?))
    })?;
    println!(
        "second factors of {} cleared ({factors} factor(s) and the recovery codes); \
         {ended} session(s) ended; a role that requires a second factor asks for a new one \
         at the next sign-in",
        user.username
    );
    Ok(())
}
