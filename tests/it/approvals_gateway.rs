//! Human approval of risky calls through the gateway (SPEC §18), with the
//! official MCP Python SDK client and a stock SDK server upstream: a held
//! call goes ahead the moment a person approves it, a denied or expired
//! one gets the client a JSON-RPC error and never reaches the upstream,
//! an approval covers one exact call once, and nobody approves their own.

use std::time::Duration;

use serde_json::{json, Value};

use crate::gateway::{records, Setup, Upstream};
use crate::support::receivers::{HttpReceiver, SmtpServer};
use crate::support::*;

/// The JSON-RPC error code of a call not approved.
const NOT_APPROVED: i64 = -32040;

/// The upstream as `kb`, an agent (`cleaner`) allowed every tool of it,
/// the rule holding `delete_*` for the role `workflow_approver`, and
/// carol, who holds that role, signed in.
pub(crate) struct Scene {
    pub s: TestServer,
    /// Kept running for the scene's life.
    pub _upstream: Upstream,
    pub admin: Setup,
    pub key: String,
    pub carol: reqwest::Client,
    pub carol_csrf: String,
    pub carol_id: String,
}

impl Scene {
    pub(crate) async fn start(timeout_seconds: u32, channels: &[&str]) -> Scene {
        Self::on(TestServer::start().await, timeout_seconds, channels).await
    }

    pub(crate) async fn on(s: TestServer, timeout_seconds: u32, channels: &[&str]) -> Scene {
        let upstream = Upstream::start(false).await;
        let a = Setup::new(&s).await;
        a.server(&s, "kb", &upstream.url, json!({})).await;
        a.role(&s, "kb_user", &["mcp:call"]).await;
        a.role(&s, "workflow_approver", &["approval:read"]).await;
        let (id, key) = a.agent(&s, "cleaner").await;
        a.assign(&s, &id, "kb_user", Some(("mcp_tool", "kb/*")))
            .await;
        post(
            &a.c,
            &a.csrf,
            &s,
            "/api/v1/approval-rules",
            json!({"name": "workflow-deletes", "server": "kb", "tools": "delete_*",
                   "approver_role": "workflow_approver", "timeout_seconds": timeout_seconds,
                   "channels": channels}),
        )
        .await;
        let carol = create_user(&s, &a.c, &a.csrf, "carol", "carol's long password").await;
        let carol_id = carol["id"].as_str().unwrap().to_string();
        for role in ["workflow_approver", "kb_user"] {
            post(
                &a.c,
                &a.csrf,
                &s,
                "/api/v1/role-assignments",
                json!({"subject": {"type": "user", "id": carol_id}, "role": role}),
            )
            .await;
        }
        let c = client();
        let carol_csrf = login(&s, &c, "carol", "carol's long password").await;
        Scene {
            s,
            _upstream: upstream,
            admin: a,
            key,
            carol: c,
            carol_csrf,
            carol_id,
        }
    }

    /// The SDK client's steps with `credential`, in the background; the
    /// script's whole output (`steps`, `ended_at`).
    pub(crate) fn client(
        &self,
        credential: &str,
        steps: &[&str],
    ) -> tokio::task::JoinHandle<Value> {
        let mut args = vec![self.s.url("/mcp/kb"), credential.to_string()];
        args.extend(steps.iter().map(|s| s.to_string()));
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            crate::mcp_sdk::run_script_with("client_gateway.py", &args, &[])
        })
    }

    /// Waits until carol sees `n` pending requests; returns them.
    pub(crate) async fn pending(&self, n: usize) -> Vec<Value> {
        for _ in 0..200 {
            let list = get_json(&self.carol, &self.s, "/api/v1/approvals?state=pending").await;
            if items(&list).len() >= n {
                return items(&list).clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{n} pending approval requests did not appear");
    }

    /// Carol's `decision` (approve or deny) on request `id`: the status.
    pub(crate) async fn decide(&self, id: &str, decision: &str) -> u16 {
        self.carol
            .post(self.s.url(&format!("/api/v1/approvals/{id}/{decision}")))
            .header("x-csrf-token", &self.carol_csrf)
            .json(&json!({"reason": "checked with the owner"}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// What reached the upstream's delete_workflow, asked as the agent.
    pub(crate) async fn deleted(&self) -> String {
        let out = self
            .client(&self.key.clone(), &["call:list_deleted:{}"])
            .await
            .unwrap();
        out["steps"][0]["text"][0]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

fn delete(workflow: &str) -> String {
    format!("call:delete_workflow:{}", json!({"workflow": workflow}))
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_call_goes_ahead_once_approved_and_only_for_its_exact_arguments() {
    let sc = Scene::start(300, &[]).await;
    let held = sc.client(&sc.key, &[&delete("nightly")]);
    let pending = sc.pending(1).await;
    let request = &pending[0];
    assert_eq!(request["tool"], "delete_workflow");
    assert_eq!(request["server"], "kb");
    assert_eq!(request["principal_type"], "agent");
    assert_eq!(request["arguments"], json!({"workflow": "nightly"}));
    assert_eq!(request["rule_name"], "workflow-deletes");
    let id = request["id"].as_str().unwrap().to_string();
    // Held: nothing has reached the upstream.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!held.is_finished());

    let approved_at = unix_now();
    assert_eq!(sc.decide(&id, "approve").await, 200);
    let out = held.await.unwrap();
    assert_eq!(
        out["steps"][0],
        json!({"is_error": false, "text": ["deleted nightly"]})
    );
    // The wake-up is a signal, not a poll (the fallback look is every 5 s):
    // the answer follows the approval within a second.
    let waited = out["ended_at"][0].as_f64().unwrap() - approved_at;
    assert!(
        waited < 1.0,
        "the call ended {waited:.3} s after the approval"
    );

    // Other arguments are not covered, and the approval was used once: both
    // calls wait on new requests.
    let other = sc.client(&sc.key, &[&delete("other")]);
    let again = sc.client(&sc.key, &[&delete("nightly")]);
    let pending = sc.pending(2).await;
    assert!(pending.iter().all(|r| r["id"] != id.as_str()));
    let mut args: Vec<String> = pending
        .iter()
        .map(|r| r["arguments"]["workflow"].as_str().unwrap().to_string())
        .collect();
    args.sort();
    assert_eq!(args, ["nightly", "other"]);
    for r in &pending {
        assert_eq!(sc.decide(r["id"].as_str().unwrap(), "deny").await, 200);
    }
    for h in [other, again] {
        let step = &h.await.unwrap()["steps"][0];
        assert_eq!(step["code"], NOT_APPROVED, "{step}");
        assert!(step["error"].as_str().unwrap().contains("denied"), "{step}");
    }
    // The upstream saw the approved call, once, and neither denied one.
    assert_eq!(sc.deleted().await, "nightly");
    assert_eq!(
        get_json(&sc.carol, &sc.s, &format!("/api/v1/approvals/{id}")).await["state"],
        "used"
    );

    // Each step is on the audit trail: asked, decided, used, and the
    // denied calls' results say so.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(records(&sc.s, "approval.request").len(), 3);
    assert_eq!(records(&sc.s, "approval.approve").len(), 1);
    assert_eq!(records(&sc.s, "approval.deny").len(), 2);
    assert_eq!(records(&sc.s, "approval.use").len(), 1);
    let results = records(&sc.s, "mcp.tool_call.result");
    let not_approved = results
        .iter()
        .filter(|(outcome, d)| outcome == "denied" && d["result"] == "not_approved")
        .count();
    assert_eq!(not_approved, 2, "{results:?}");
    sc.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_approves_their_own_call_and_an_undecided_one_expires() {
    let sc = Scene::start(10, &[]).await;
    // carol calls through the gateway with an access token of her own.
    let uri = get_json(&sc.admin.c, &sc.s, "/api/v1/mcp-servers").await["items"][0]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    let (token, _) =
        sc.s.running()
            .app
            .issuer()
            .mint(
                &sc.carol_id,
                agentry::identity::PrincipalKind::User,
                "test-client",
                &uri,
                "mcp:call",
            )
            .unwrap();
    let hers = sc.client(&token, &[&delete("carols")]);
    let theirs = sc.client(&sc.key, &[&delete("agents")]);
    let pending = sc.pending(2).await;
    let own = pending
        .iter()
        .find(|r| r["principal_id"] == sc.carol_id.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(sc.decide(&own, "approve").await, 403, "four eyes");
    // The administrator (approval:manage) may approve it.
    let res = sc
        .admin
        .send(
            &sc.s,
            reqwest::Method::POST,
            &format!("/api/v1/approvals/{own}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let step = &hers.await.unwrap()["steps"][0];
    assert_eq!(step["text"][0], "deleted carols", "{step}");

    // Nobody decides the agent's: it expires after the rule's 10 seconds.
    let step = &theirs.await.unwrap()["steps"][0];
    assert_eq!(step["code"], NOT_APPROVED, "{step}");
    assert!(
        step["error"].as_str().unwrap().contains("expired"),
        "{step}"
    );
    assert_eq!(sc.deleted().await, "carols");
    let expired = get_json(&sc.carol, &sc.s, "/api/v1/approvals?state=expired").await;
    assert_eq!(items(&expired).len(), 1);
    assert_eq!(records(&sc.s, "approval.expire").len(), 1);
    sc.s.stop().await;
}

/// The path and query of the first `/approvals/…?link=…` URL in `text`.
fn review_path(text: &str) -> String {
    let start = text.find("/approvals/").expect("a link to the request");
    let rest = &text[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"' || c == '>' || c == '|')
        .unwrap_or(rest.len());
    rest[..end].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_reaches_email_and_a_webhook_and_their_link_decides_it() {
    let s = TestServer::start().await;
    let smtp = SmtpServer::start();
    let hook = HttpReceiver::start().await;
    let (c, csrf) = admin(&s).await;
    post(
        &c,
        &csrf,
        &s,
        "/api/v1/channels",
        json!({"name": "approvers-mail", "type": "email", "settings": {
            "smtp_host": smtp.host(), "smtp_port": smtp.port(), "tls": "none",
            "from": "agentry@example.com", "to": ["approvers@example.com"]}}),
    )
    .await;
    post(
        &c,
        &csrf,
        &s,
        "/api/v1/channels",
        json!({"name": "approvers-hook", "type": "webhook",
            "settings": {"url": hook.url("/alertmanager")}}),
    )
    .await;
    // A minute undecided, the webhook is told again (an escalation step).
    post(
        &c,
        &csrf,
        &s,
        "/api/v1/escalation-policies",
        json!({"name": "approvers-again",
               "steps": [{"after_seconds": 0, "channels": ["@rule"]},
                         {"after_seconds": 60, "channels": ["approvers-hook"]}]}),
    )
    .await;
    let sc = Scene::on(s, 300, &["approvers-mail", "approvers-hook"]).await;
    let rules = get_json(&c, &sc.s, "/api/v1/approval-rules").await;
    let mut rule = items(&rules)[0].clone();
    let rule_id = rule["id"].as_str().unwrap().to_string();
    for k in ["id", "version", "created_at", "updated_at"] {
        rule.as_object_mut().unwrap().remove(k);
    }
    rule["escalation_policy"] = json!("approvers-again");
    put(
        &c,
        &csrf,
        &sc.s,
        &format!("/api/v1/approval-rules/{rule_id}"),
        rule,
    )
    .await;
    let held = sc.client(&sc.key, &[&delete("nightly")]);
    let id = sc.pending(1).await[0]["id"].as_str().unwrap().to_string();
    let queued = get_json(&c, &sc.s, "/api/v1/notifications").await;
    assert_eq!(
        items(&queued).len(),
        3,
        "two now, one in a minute: {queued}"
    );

    // The email: what is asked, by whom, and the link.
    let mail = &smtp.wait_for(1, Duration::from_secs(20)).await[0];
    let subject = mail.header("Subject").unwrap();
    assert!(subject.starts_with("[APPROVAL]"), "{subject}");
    assert!(
        subject.contains("delete_workflow") && subject.contains("cleaner"),
        "{subject}"
    );
    let text = mail.body_text();
    let link = review_path(&text);
    assert!(
        link.starts_with(&format!("/approvals/{id}?link=")),
        "{link}"
    );
    assert!(
        !text.contains("nightly"),
        "arguments stay out of the notification"
    );

    // The webhook (Alertmanager format): the call as labels, the link as
    // an annotation.
    let hooked = &hook.wait_for(1, Duration::from_secs(20)).await[0];
    let alert = &hooked.json()["alerts"][0];
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["labels"]["approval_id"], id.as_str());
    assert_eq!(alert["labels"]["tool"], "delete_workflow");
    assert_eq!(alert["labels"]["server"], "kb");
    assert_eq!(alert["labels"]["principal"], "agent:cleaner");
    assert_eq!(
        review_path(alert["annotations"]["review_url"].as_str().unwrap()),
        link
    );

    // A forged or altered link shows nothing.
    let forged = sc
        .carol
        .get(sc.s.url(&format!("/approvals/{id}?link=AAAA")))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 404);

    // Signed out, the link leads through the sign-in and back.
    let fresh = client();
    let res = fresh.get(sc.s.url(&link)).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let to = res.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with("/login"), "{to}");

    // Carol opens it: the exact call, and the decision as a form (opening
    // it decided nothing).
    let page = get_text(&sc.carol, &sc.s, &link).await;
    assert!(
        page.contains("delete_workflow") && page.contains("&#34;nightly&#34;"),
        "{page}"
    );
    assert!(!held.is_finished());
    let form_link = link.split("link=").nth(1).unwrap().to_string();
    let token = form_csrf(&page);
    // Without the page's token: refused, still pending.
    let res = sc
        .carol
        .post(sc.s.url(&format!("/approvals/{id}/approve")))
        .form(&[("csrf_token", "forged"), ("link", form_link.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = sc
        .carol
        .post(sc.s.url(&format!("/approvals/{id}/approve")))
        .form(&[
            ("csrf_token", token.as_str()),
            ("link", form_link.as_str()),
            ("reason", "nightly is retired"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let out = held.await.unwrap();
    assert_eq!(out["steps"][0]["text"][0], "deleted nightly");
    // Decided: the escalation step still to come is dropped, and both
    // channels hear the end (a resolved alert of the same fingerprint).
    let ended = &hook.wait_for(2, Duration::from_secs(20)).await[1].json();
    assert_eq!(ended["status"], "resolved");
    assert_eq!(ended["alerts"][0]["labels"]["approval_id"], id.as_str());
    assert_eq!(
        ended["alerts"][0]["annotations"]["outcome"],
        "approved by carol"
    );
    let mails = smtp.wait_for(2, Duration::from_secs(20)).await;
    let subject = mails[1].header("Subject").unwrap();
    assert!(subject.starts_with("[RESOLVED]"), "{subject}");
    let told = get_json(&c, &sc.s, "/api/v1/notifications").await;
    let kinds: Vec<&str> = items(&told)
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "approval").count(),
        2,
        "{told}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "resolved").count(),
        2,
        "{told}"
    );

    // Single use: the link now shows the outcome and offers no decision; a
    // second post is refused.
    let page = get_text(&sc.carol, &sc.s, &link).await;
    assert!(page.contains("approved by carol"), "{page}");
    assert!(!page.contains(&format!("id=\"approve-{id}\"")));
    let res = sc
        .carol
        .post(sc.s.url(&format!("/approvals/{id}/deny")))
        .form(&[("csrf_token", token.as_str()), ("link", form_link.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let approvals = records(&sc.s, "approval.approve");
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0].1["via"], "notification_link");
    sc.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_call_survives_a_restart_and_the_retry_joins_its_request() {
    let sc = Scene::start(300, &[]).await;
    let held = sc.client(&sc.key, &[&delete("nightly")]);
    let id = sc.pending(1).await[0]["id"].as_str().unwrap().to_string();

    // Stopping answers the held call at once (the request stays), rather
    // than holding the shutdown.
    let Scene {
        s,
        _upstream,
        admin: _,
        key,
        carol,
        carol_csrf,
        carol_id,
    } = sc;
    let config = (*s.running().app.config).clone();
    let port = s.running().addr.port();
    let stopping = std::time::Instant::now();
    let dir = s.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(20),
        "the shutdown was held"
    );
    let step = &held.await.unwrap()["steps"][0];
    assert_eq!(step["code"], NOT_APPROVED, "{step}");
    assert!(step["error"].as_str().unwrap().contains("retry"), "{step}");

    // Started again on the same directory and port: the request is there,
    // and the client's retry of the identical call joins it.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let s = TestServer::start_on(listener, dir, config).await;
    let admin = Setup::new(&s).await;
    let sc = Scene {
        s,
        _upstream,
        admin,
        key,
        carol,
        carol_csrf,
        carol_id,
    };
    let retry = sc.client(&sc.key, &[&delete("nightly")]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pending = sc.pending(1).await;
    assert_eq!(pending.len(), 1);
    assert_eq!(
        pending[0]["id"],
        id.as_str(),
        "the retry joined the request"
    );
    assert_eq!(records(&sc.s, "approval.request").len(), 1);
    assert!(!retry.is_finished());
    assert_eq!(sc.decide(&id, "approve").await, 200);
    let out = retry.await.unwrap();
    assert_eq!(out["steps"][0]["text"][0], "deleted nightly");
    assert_eq!(sc.deleted().await, "nightly");
    sc.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_takes_json_only_waits_without_a_stream() {
    let sc = Scene::start(300, &[]).await;
    let url = sc.s.url("/mcp/kb");
    let key = sc.key.clone();
    let call = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .bearer_auth(key)
            .header("accept", "application/json")
            .json(&json!({"jsonrpc": "2.0", "id": 41, "method": "tools/call",
                          "params": {"name": "delete_workflow", "arguments": {"workflow": "w"}}}))
            .send()
            .await
            .unwrap()
    });
    let id = sc.pending(1).await[0]["id"].as_str().unwrap().to_string();
    assert_eq!(sc.decide(&id, "deny").await, 200);
    let res = call.await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["id"], 41);
    assert_eq!(v["error"]["code"], NOT_APPROVED);
    assert_eq!(
        v["error"]["data"],
        json!({"approval_id": id, "state": "denied"})
    );
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("checked with the owner"));
    assert_eq!(sc.deleted().await, "");
    sc.s.stop().await;
}
