//! The chat UI's API on the real binary: conversations, streamed cited answers stored in the
//! catalog (also when stopped halfway), regenerate, feedback linked to lineage, document text, the
//! embedded assets with their security headers, and the embedded default app.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::Server;
use crate::rag::{run, write_handbook};

/// Reads server-sent events until the stream ends: (event name, data).
async fn events(response: reqwest::Response) -> Vec<(String, Value)> {
    let text = response.text().await.expect("stream");
    parse_events(&text)
}

pub(crate) fn parse_events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut name = "message".to_owned();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    name = value.trim().to_owned();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push_str(value.trim_start());
                }
            }
            (!data.is_empty()).then(|| (name, serde_json::from_str(&data).expect("JSON data")))
        })
        .collect()
}

fn setup(dir: &Path, base_url: &str) -> Server {
    write_handbook(&dir.join("docs"));
    std::fs::write(
        dir.join("cairn.toml"),
        format!(
            "[[models]]\nname = \"writer\"\nprovider = \"openai-compatible\"\nbase_url = \"{base_url}\"\nmodel = \"good\"\n\
             [[models]]\nname = \"slow\"\nprovider = \"openai-compatible\"\nbase_url = \"{base_url}\"\nmodel = \"trickle\"\n\
             [[models]]\nname = \"down\"\nprovider = \"openai-compatible\"\nbase_url = \"{base_url}\"\nmodel = \"down\"\n\
             [[apps]]\nname = \"handbook\"\ncollections = [\"handbook\"]\nroute = \"writer\"\ntop_k = 3\n\
             [[apps]]\nname = \"slow\"\ncollections = [\"handbook\"]\nroute = \"slow\"\ntop_k = 2\n\
             [[apps]]\nname = \"down\"\ncollections = [\"handbook\"]\nroute = \"down\"\ntop_k = 2\n"
        ),
    )
    .expect("config");
    let (ok, stdout, stderr) = run(dir, &["ingest", "docs", "--collection", "handbook"], &[]);
    assert!(ok, "{stdout}\n{stderr}");
    let model = cairn_testkit::test_model("minilm").display().to_string();
    Server::start(dir, &[("CAIRN__EMBEDDING__LOCAL", &model)])
}

/// The lineage record of an answer, once written (it is written just after the answer); the 30 s
/// limit only catches a hang.
pub(crate) async fn lineage(client: &reqwest::Client, server: &Server, id: &str) -> Value {
    lineage_where(client, server, id, |_| true).await
}

/// The lineage record of an answer once `ready` holds for it (online scores land after the record).
pub(crate) async fn lineage_where(
    client: &reqwest::Client,
    server: &Server,
    id: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..600 {
        let response = client
            .get(server.url(&format!("/v1/lineage/{id}")))
            .send()
            .await
            .expect("lineage");
        if response.status() == 200 {
            let record: Value = response.json().await.expect("json");
            if ready(&record) {
                return record;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no lineage record {id}, or not the one awaited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_store_streamed_cited_answers_feedback_and_stopped_answers() {
    let upstream = cairn_testkit::ScriptedUpstream::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let server = setup(dir.path(), &upstream.base_url());
    let client = reqwest::Client::new();

    let apps: Value = super::json_body(client.get(server.url("/v1/apps"))).await;
    let names: Vec<&str> = apps["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, ["handbook", "slow", "down"]);

    let created = client
        .post(server.url("/v1/conversations"))
        .json(&json!({}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
    let conversation: Value = created.json().await.expect("json");
    let id = conversation["id"].as_str().expect("id").to_owned();
    let ask = |body: Value| {
        client
            .post(server.url(&format!("/v1/conversations/{id}/messages")))
            .json(&body)
            .send()
    };

    // A streamed answer: citations first, then the text, then done; stored with its lineage.
    let question = "Where is the catalog kept when I use PostgreSQL?";
    let response = ask(json!({"app": "handbook", "content": question}))
        .await
        .expect("ask");
    assert_eq!(response.status(), 200);
    let streamed = events(response).await;
    let names: Vec<&str> = streamed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["start", "delta", "delta", "done"], "{streamed:?}");
    let start = &streamed[0].1;
    assert!(
        start["citations"][0]["source"]
            .as_str()
            .unwrap_or_default()
            .ends_with("database.md"),
        "{start}"
    );
    assert_eq!(streamed[1].1["text"], "Hi");
    let done = &streamed[3].1;
    let lineage_id = done["lineage_id"].as_str().expect("lineage id").to_owned();
    assert_eq!(start["lineage_id"], lineage_id.as_str());

    let stored: Value =
        super::json_body(client.get(server.url(&format!("/v1/conversations/{id}")))).await;
    assert_eq!(
        stored["title"], question,
        "the first question names the conversation"
    );
    let messages = stored["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2, "{stored}");
    assert_eq!(
        (
            messages[0]["role"].as_str(),
            messages[0]["content"].as_str()
        ),
        (Some("user"), Some(question))
    );
    assert_eq!(messages[1]["content"], "Hi there");
    assert_eq!(messages[1]["lineage_id"], lineage_id.as_str());
    assert_eq!(
        messages[1]["citations"][0], start["citations"][0],
        "stored citations match the streamed ones"
    );
    let record = lineage(&client, &server, &lineage_id).await;
    assert_eq!(record["conversation_id"], id.as_str());
    assert_eq!(
        (
            record["app"].as_str(),
            record["prompt_name"].as_str(),
            record["status"].as_str()
        ),
        (Some("handbook"), Some("rag_answer"), Some("ok"))
    );

    // Feedback is linked to the answer's lineage record.
    let feedback = client
        .post(server.url(&format!("/v1/lineage/{lineage_id}/feedback")))
        .json(&json!({"rating": -1, "comment": "cite the SQLite section too"}))
        .send()
        .await
        .expect("feedback");
    assert_eq!(feedback.status(), 201);
    let record = lineage(&client, &server, &lineage_id).await;
    assert_eq!(record["feedback"][0]["rating"], -1);
    assert_eq!(
        record["feedback"][0]["comment"],
        "cite the SQLite section too"
    );
    let bad = client
        .post(server.url(&format!("/v1/lineage/{lineage_id}/feedback")))
        .json(&json!({"rating": 5}))
        .send()
        .await
        .expect("feedback");
    assert_eq!(bad.status(), 400);

    // Regenerate answers the last question again, adding an answer.
    let again = events(
        ask(json!({"app": "handbook", "regenerate": true}))
            .await
            .expect("regenerate"),
    )
    .await;
    assert_eq!(again.last().map(|(n, _)| n.as_str()), Some("done"));
    assert_eq!(again[0].1["user_message_id"], Value::Null);

    // An answer stopped halfway keeps what was generated.
    let mut response = ask(json!({"app": "slow", "content": "Tell me slowly"}))
        .await
        .expect("ask");
    let mut seen = String::new();
    while !seen.contains("word2") {
        let chunk = response.chunk().await.expect("chunk").expect("more");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(response);
    // Written in the background once the client has gone; the 30 s limit only catches a hang.
    let mut partial = Value::Null;
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stored: Value =
            super::json_body(client.get(server.url(&format!("/v1/conversations/{id}")))).await;
        let messages = stored["messages"].as_array().cloned().unwrap_or_default();
        if messages.len() == 5 {
            partial = messages[4].clone();
            break;
        }
    }
    let text = partial["content"].as_str().unwrap_or_default();
    assert!(text.starts_with("word0 word1 word2"), "{partial}");
    assert!(
        !text.contains("word99"),
        "generation went on after the client left: {text}"
    );
    let record = lineage(
        &client,
        &server,
        partial["lineage_id"].as_str().expect("lineage"),
    )
    .await;
    assert_eq!(record["status"], "cancelled");

    // Upstream trouble is an error event the UI can show.
    let failed = events(
        ask(json!({"app": "down", "content": "anyone there?"}))
            .await
            .expect("ask"),
    )
    .await;
    let (name, data) = failed.last().expect("events");
    assert_eq!(name, "error", "{failed:?}");
    assert!(!data["message"].as_str().unwrap_or_default().is_empty());

    // Bad input is refused before anything is stored.
    let unknown = ask(json!({"app": "nope", "content": "x"}))
        .await
        .expect("ask");
    assert_eq!(unknown.status(), 404);
    let empty = ask(json!({"app": "handbook", "content": "  "}))
        .await
        .expect("ask");
    assert_eq!(empty.status(), 400);

    // Rename, list, document text, delete.
    let renamed = client
        .patch(server.url(&format!("/v1/conversations/{id}")))
        .json(&json!({"title": "Catalog"}))
        .send()
        .await
        .expect("rename");
    assert_eq!(renamed.status(), 200);
    let listed: Value = super::json_body(client.get(server.url("/v1/conversations"))).await;
    assert_eq!(listed["data"][0]["title"], "Catalog");
    let citation = &start["citations"][0];
    let (from, to) = (
        citation["char_start"].as_i64().unwrap_or(0),
        citation["char_end"].as_i64().unwrap_or(0),
    );
    let text: Value = super::json_body(client.get(server.url(&format!(
        "/v1/documents/{}/text?start={}&end={}",
        citation["document_id"].as_str().unwrap_or_default(),
        from - 1000,
        to
    ))))
    .await;
    assert_eq!(text["start"], 0);
    assert!(
        text["text"]
            .as_str()
            .unwrap_or_default()
            .ends_with(citation["text"].as_str().unwrap_or_default().trim_end()),
        "{text}"
    );
    let deleted = client
        .delete(server.url(&format!("/v1/conversations/{id}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 204);
    let gone = client
        .get(server.url(&format!("/v1/conversations/{id}")))
        .send()
        .await
        .expect("get");
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn the_ui_is_embedded_with_a_strict_content_security_policy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &[]);
    for path in [
        "/",
        "/assets/app.js",
        "/assets/style.css",
        "/assets/vendor/marked.esm.js",
        "/assets/vendor/purify.es.mjs",
    ] {
        let response = reqwest::get(server.url(path)).await.expect("get");
        assert_eq!(response.status(), 200, "{path}");
        let csp = response
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("img-src 'self' data:"),
            "{path}: {csp}"
        );
        assert!(!response.text().await.expect("body").is_empty(), "{path}");
    }
    let missing = reqwest::get(server.url("/assets/../../etc/passwd"))
        .await
        .expect("get");
    assert_eq!(missing.status(), 404);
    // With nothing configured, the embedded mode offers a chat app over every collection, served
    // by a local model loaded on first use.
    let apps: Value = reqwest::get(server.url("/v1/apps"))
        .await
        .expect("apps")
        .json()
        .await
        .expect("json");
    assert_eq!(apps["data"][0]["name"], "chat", "{apps}");
    assert_eq!(apps["data"][0]["collections"], json!(["*"]));
    let me: Value = reqwest::get(server.url("/v1/me"))
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(me["user"], "local");
}

/// The `name=value` pairs a response sets, by name.
fn set_cookies(response: &reqwest::Response) -> Vec<(String, String)> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

fn location(response: &reqwest::Response) -> String {
    assert!(
        response.status().is_redirection(),
        "expected a redirect, got {}",
        response.status()
    );
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location header")
        .to_owned()
}

/// Signs in through the fake provider as whoever it is set to; returns the session cookie.
async fn sign_in(client: &reqwest::Client, server: &Server) -> String {
    let login = client
        .get(server.url("/auth/login?return_to=/%23c%3Dabc"))
        .send()
        .await
        .expect("login");
    let authorize = location(&login);
    assert!(
        authorize.contains("code_challenge_method=S256"),
        "{authorize}"
    );
    assert!(authorize.contains("code_challenge="), "{authorize}");
    let pending = set_cookies(&login)
        .into_iter()
        .find(|(name, _)| name == "cairn_oidc")
        .expect("a pending sign-in cookie");
    let provider = client.get(&authorize).send().await.expect("authorize");
    let callback = location(&provider);
    assert!(
        callback.starts_with(&server.url("/auth/callback?")),
        "{callback}"
    );
    let back = client
        .get(&callback)
        .header("cookie", format!("{}={}", pending.0, pending.1))
        .send()
        .await
        .expect("callback");
    assert_eq!(location(&back), "/#c=abc");
    let session = set_cookies(&back)
        .into_iter()
        .find(|(name, _)| name == "cairn_session")
        .expect("a session cookie");
    format!("{}={}", session.0, session.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_through_oidc_with_pkce_and_conversations_belong_to_the_user() {
    let provider = cairn_testkit::oidc::FakeOidc::start().await;
    let (dir, server) = super::serve_with_oidc(&provider);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");

    let anonymous = client.get(server.url("/v1/me")).send().await.expect("me");
    assert_eq!(anonymous.status(), 401);
    let body: Value = anonymous.json().await.expect("json");
    assert_eq!(body["error"]["code"], "login_required");
    let listing = client
        .get(server.url("/v1/conversations"))
        .send()
        .await
        .expect("list");
    assert_eq!(listing.status(), 401);

    let alice = sign_in(&client, &server).await;
    assert_eq!(provider.pkce_rejections(), 0);
    let me: Value =
        super::json_body(client.get(server.url("/v1/me")).header("cookie", &alice)).await;
    assert_eq!(
        (
            me["user"].as_str(),
            me["name"].as_str(),
            me["auth"].as_str()
        ),
        (Some("sub-alice"), Some("alice"), Some("oidc"))
    );
    let created: Value = super::json_body(
        client
            .post(server.url("/v1/conversations"))
            .header("cookie", &alice)
            .header("origin", server.url(""))
            .json(&json!({"title": "Alice's"})),
    )
    .await;
    let id = created["id"].as_str().expect("id").to_owned();
    // A state change signed in by cookie must come from Cairn's own page: no Origin, or another
    // site's, is a cross-site request forgery.
    for origin in [None, Some("https://evil.example")] {
        let mut forged = client
            .post(server.url("/v1/conversations"))
            .header("cookie", &alice)
            .json(&json!({"title": "forged"}));
        if let Some(origin) = origin {
            forged = forged.header("origin", origin);
        }
        let response = forged.send().await.expect("forged");
        assert_eq!(response.status(), 403, "{origin:?}");
    }

    provider.set_user("bob");
    let bob = sign_in(&client, &server).await;
    let theirs: Value = super::json_body(
        client
            .get(server.url("/v1/conversations"))
            .header("cookie", &bob),
    )
    .await;
    assert_eq!(theirs["data"], json!([]), "bob sees alice's conversations");
    for request in [
        client.get(server.url(&format!("/v1/conversations/{id}"))),
        client.delete(server.url(&format!("/v1/conversations/{id}"))),
        client
            .patch(server.url(&format!("/v1/conversations/{id}")))
            .json(&json!({"title": "mine"})),
    ] {
        let response = request
            .header("cookie", &bob)
            .header("origin", server.url(""))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 404);
    }
    let mine: Value = super::json_body(
        client
            .get(server.url("/v1/conversations"))
            .header("cookie", &alice),
    )
    .await;
    assert_eq!(mine["data"][0]["title"], "Alice's");

    // A tampered session, a callback without its sign-in, and a replayed code are refused.
    // The cookie carries a signed session id: change one character of the id.
    let mut tampered = alice.clone();
    let last = tampered.pop().expect("a cookie");
    tampered.push(if last == '0' { '1' } else { '0' });
    let response = client
        .get(server.url("/v1/me"))
        .header("cookie", tampered)
        .send()
        .await
        .expect("me");
    assert_eq!(response.status(), 401);
    let stray = client
        .get(server.url("/auth/callback?code=code-1&state=x"))
        .send()
        .await
        .expect("callback");
    assert_eq!(stray.status(), 401);
    let body: Value = stray.json().await.expect("json");
    assert_eq!(body["error"]["code"], "sign_in_failed");

    let logout = client
        .post(server.url("/auth/logout"))
        .header("cookie", &alice)
        .send()
        .await
        .expect("logout");
    let cleared = set_cookies(&logout);
    assert!(
        cleared
            .iter()
            .any(|(name, value)| name == "cairn_session" && value.is_empty()),
        "{cleared:?}"
    );
    // The session ended server-side: a copy of the cookie kept from before is worthless.
    let replayed = client
        .get(server.url("/v1/me"))
        .header("cookie", &alice)
        .send()
        .await
        .expect("me");
    assert_eq!(replayed.status(), 401, "a signed-out session still works");
    let still: Value =
        super::json_body(client.get(server.url("/v1/me")).header("cookie", &bob)).await;
    assert_eq!(
        still["user"], "sub-bob",
        "another user's session is untouched"
    );
    // An operator signs bob out everywhere from the command line.
    let (ok, stdout, stderr) =
        super::run_cairn(dir.path(), &["session", "revoke", "--user", "sub-bob"]);
    assert!(ok && stdout.contains("ended 1 session"), "{stdout}{stderr}");
    let ended = client
        .get(server.url("/v1/me"))
        .header("cookie", &bob)
        .send()
        .await
        .expect("me");
    assert_eq!(ended.status(), 401);

    // The provider rotates its signing key: the next sign-in fetches the new key and succeeds.
    provider.rotate_key();
    provider.set_user("carol");
    let carol = sign_in(&client, &server).await;
    let me: Value =
        super::json_body(client.get(server.url("/v1/me")).header("cookie", &carol)).await;
    assert_eq!(me["user"], "sub-carol", "{me}");
}
