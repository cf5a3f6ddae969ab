//! Token exchange (RFC 8693): an MCP server trades a token addressed to
//! itself for one to a downstream server, for the same subject, never
//! wider, with an `act` chain naming each hop.

use serde_json::{json, Value};

use crate::mcp_sdk::claims_of;
use crate::support::*;

const KB: &str = "https://kb.example.com/mcp";
const TICKETS: &str = "https://tickets.example.com/mcp";
const BILLING: &str = "https://billing.example.com/mcp";

struct Fleet {
    kb_agent: (String, String),
    tickets_agent: (String, String),
    subject: (String, String),
}

async fn agent(s: &TestServer, c: &reqwest::Client, csrf: &str, name: &str) -> (String, String) {
    let id = create_agent(s, c, csrf, name, "mcp_server").await;
    let key = create_agent_key(s, c, csrf, &id).await;
    (id, key)
}

async fn assign(
    s: &TestServer,
    c: &reqwest::Client,
    csrf: &str,
    id: &str,
    role: &str,
    on: Option<&str>,
) {
    let mut body = json!({"subject": {"type": "agent", "id": id}, "role": role});
    if let Some(server) = on {
        body["scope"] = json!({"resource_type": "mcp_server", "resource_pattern": server});
    }
    post(c, csrf, s, "/api/v1/role-assignments", body).await;
}

async fn fleet(s: &TestServer) -> Fleet {
    let (c, csrf) = admin(s).await;
    let kb_agent = agent(s, &c, &csrf, "kb-server").await;
    let tickets_agent = agent(s, &c, &csrf, "tickets-server").await;
    let subject = agent(s, &c, &csrf, "planner").await;
    for (name, uri, by, scopes) in [
        (
            "kb",
            KB,
            Some(&kb_agent.0),
            json!(["knowledge:read", "tickets:read"]),
        ),
        (
            "tickets",
            TICKETS,
            Some(&tickets_agent.0),
            json!(["tickets:read", "knowledge:read"]),
        ),
        ("billing", BILLING, None, json!([])),
    ] {
        let body = json!({"name": name, "uri": uri, "agent_id": by, "scopes_supported": scopes});
        post(&c, &csrf, s, "/api/v1/mcp-servers", body).await;
    }
    let roles = [
        json!({"name": "reader", "permissions": ["knowledge:read", "tickets:read"]}),
        json!({"name": "delegator", "permissions": ["token:exchange"]}),
    ];
    for r in roles {
        post(&c, &csrf, s, "/api/v1/roles", r).await;
    }
    assign(s, &c, &csrf, &subject.0, "reader", None).await;
    // kb may delegate to tickets only; tickets may delegate back to kb.
    assign(s, &c, &csrf, &kb_agent.0, "delegator", Some("tickets")).await;
    assign(s, &c, &csrf, &tickets_agent.0, "delegator", Some("kb")).await;
    Fleet {
        kb_agent,
        tickets_agent,
        subject,
    }
}

async fn cc_token(s: &TestServer, who: &(String, String), resource: &str) -> String {
    let res = crate::oauth::token(s, &who.0, &who.1, &[("resource", resource)]).await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn exchange(
    s: &TestServer,
    by: &(String, String),
    subject_token: &str,
    resource: &str,
    scope: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("subject_token", subject_token),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        ),
        ("resource", resource),
    ];
    if let Some(sc) = scope {
        form.push(("scope", sc));
    }
    client()
        .post(s.url("/oauth/token"))
        .basic_auth(&by.0, Some(&by.1))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn error_of(res: reqwest::Response) -> String {
    assert_eq!(res.status(), 400);
    res.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_server_exchanges_its_callers_token_for_a_narrower_downstream_one() {
    let s = TestServer::start().await;
    let f = fleet(&s).await;
    let for_kb = cc_token(&s, &f.subject, KB).await;
    let kb_claims = claims_of(&for_kb);
    assert_eq!(kb_claims["scope"], "knowledge:read tickets:read");

    let res = exchange(&s, &f.kb_agent, &for_kb, TICKETS, None).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    let hop1 = body["access_token"].as_str().unwrap().to_string();
    let c1 = claims_of(&hop1);
    assert_eq!(c1["sub"], f.subject.0.as_str());
    assert_eq!(c1["aud"], TICKETS);
    assert_eq!(c1["act"], json!({"sub": f.kb_agent.0}));
    assert_eq!(c1["client_id"], f.kb_agent.0.as_str());
    assert!(c1["exp"].as_i64().unwrap() <= kb_claims["exp"].as_i64().unwrap());
    assert_eq!(c1["scope"], "knowledge:read tickets:read");

    // The downstream server exchanges onwards, narrower still.
    let res = exchange(&s, &f.tickets_agent, &hop1, KB, Some("tickets:read")).await;
    assert_eq!(res.status(), 200);
    let hop2 = claims_of(
        res.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(hop2["scope"], "tickets:read");
    assert_eq!(
        hop2["act"],
        json!({"sub": f.tickets_agent.0, "act": {"sub": f.kb_agent.0}})
    );

    // Refusals: widening, another server's token, a server it may not
    // delegate to, an unregistered one, a bad subject token.
    assert_eq!(
        error_of(exchange(&s, &f.kb_agent, &for_kb, TICKETS, Some("tickets:write")).await).await,
        "invalid_scope"
    );
    assert_eq!(
        error_of(exchange(&s, &f.tickets_agent, &for_kb, KB, None).await).await,
        "invalid_grant"
    );
    assert_eq!(
        error_of(exchange(&s, &f.kb_agent, &for_kb, BILLING, None).await).await,
        "invalid_grant"
    );
    assert_eq!(
        error_of(
            exchange(
                &s,
                &f.kb_agent,
                &for_kb,
                "https://nowhere.example.com/",
                None
            )
            .await
        )
        .await,
        "invalid_target"
    );
    assert_eq!(
        error_of(exchange(&s, &f.kb_agent, "not-a-token", TICKETS, None).await).await,
        "invalid_grant"
    );
    // The exchanger must authenticate.
    let res = client()
        .post(s.url("/oauth/token"))
        .form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", for_kb.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let (ok, denied): (i64, i64) = conn
        .query_row(
            "SELECT SUM(outcome = 'success'), SUM(outcome = 'denied') FROM audit_log WHERE action = 'oauth.exchange'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(ok, 2);
    assert!(denied >= 3, "{denied}");
    s.stop().await;
}
