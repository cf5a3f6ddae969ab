//! The MCP pages in headless Chromium.

use crate::browser::{
    browser, click_css, click_link, element_text, screenshot, sign_in, start_driver, text_until,
    type_into,
};
use crate::support::*;

#[tokio::test]
async fn chromium_registers_an_mcp_server() {
    let s = TestServer::start().await;
    let (c, csrf) = admin(&s).await;
    create_agent(&s, &c, &csrf, "kb-server", "mcp_server").await;
    let driver = start_driver().await;
    let b = browser(&driver).await;
    sign_in(&b, &s).await;
    click_link(&b, "MCP servers").await;
    text_until(&b, "mcp-servers-table", |t| {
        t.contains("No MCP servers yet")
    })
    .await;

    // Refused: plain http to a remote host, and a malformed scope; what
    // was typed stays.
    type_into(&b, "f-name", "knowledge-base").await;
    type_into(&b, "f-uri", "http://kb.example.com/mcp").await;
    type_into(&b, "f-scopes_supported", "knowledge:read\nNot A Scope").await;
    click_css(&b, "#create-mcp-server button[type=submit]").await;
    text_until(&b, "error-uri", |t| t.contains("https")).await;
    text_until(&b, "error-scopes_supported", |t| t.contains("Not A Scope")).await;
    assert_eq!(
        crate::browser::value_of(&b, "f-name").await,
        "knowledge-base"
    );

    type_into(&b, "f-uri", "https://kb.example.com/mcp").await;
    type_into(&b, "f-scopes_supported", "knowledge:read\nknowledge:write").await;
    b.execute(
        "const s = document.getElementById('f-agent_id'); \
         s.value = [...s.options].find(o => o.text.startsWith('kb-server')).value;",
        vec![],
    )
    .await
    .unwrap();
    click_css(&b, "#create-mcp-server button[type=submit]").await;
    text_until(&b, "server-uri", |t| t == "https://kb.example.com/mcp").await;
    let meta = element_text(&b, "resource-metadata").await;
    let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(meta["resource"], "https://kb.example.com/mcp");
    assert_eq!(
        meta["scopes_supported"],
        serde_json::json!(["knowledge:read", "knowledge:write"])
    );
    assert_eq!(meta["authorization_servers"][0], s.url(""));
    screenshot(&b, "mcp-server.png").await;

    // Switched to proxied: the URI becomes agentry's own.
    type_into(&b, "f-upstream_url", "http://10.1.2.3:9000/mcp").await;
    click_css(&b, "#edit-mcp-server button[type=submit]").await;
    let own = s.url("/mcp/knowledge-base");
    text_until(&b, "server-uri", |t| t == own).await;

    // Listed, then removed.
    click_link(&b, "MCP servers").await;
    text_until(&b, "mcp-servers-table", |t| {
        t.contains("knowledge-base") && t.contains("proxied by agentry")
    })
    .await;
    screenshot(&b, "mcp-servers.png").await;
    click_link(&b, "knowledge-base").await;
    b.execute("window.confirm = () => true;", vec![])
        .await
        .unwrap();
    click_css(&b, "#delete-mcp-server").await;
    text_until(&b, "mcp-servers-table", |t| {
        t.contains("No MCP servers yet")
    })
    .await;
    s.stop().await;
}
