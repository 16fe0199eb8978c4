//! The configuration's layering, validation and error messages.

use super::*;

fn sources(
    file: Option<&str>,
    env: &[(&str, &str)],
    flags: &[(&str, &str, &str)],
) -> (Sources, Option<tempfile::TempDir>) {
    let dir = file.map(|_| tempfile::tempdir().expect("temp dir"));
    let path = dir.as_ref().map(|d| d.path().join("cairn.toml"));
    if let (Some(path), Some(text)) = (&path, file) {
        std::fs::write(path, text).expect("write config");
    }
    let sources = Sources {
        file: path,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        flags: flags
            .iter()
            .map(|(f, k, v)| (f.to_string(), k.to_string(), v.to_string()))
            .collect(),
    };
    (sources, dir)
}

fn load_ok(file: Option<&str>, env: &[(&str, &str)], flags: &[(&str, &str, &str)]) -> Config {
    let (sources, _dir) = sources(file, env, flags);
    load(&sources).expect("config loads")
}

/// Loads and expects an error whose message contains every fragment.
fn check_error(
    file: Option<&str>,
    env: &[(&str, &str)],
    flags: &[(&str, &str, &str)],
    fragments: &[&str],
) {
    let (sources, _dir) = sources(file, env, flags);
    let message = load(&sources).expect_err("config is refused").to_string();
    for fragment in fragments {
        assert!(
            message.contains(fragment),
            "expected `{fragment}` in:\n{message}"
        );
    }
}

#[test]
fn defaults_are_the_embedded_mode() {
    let config = load_ok(None, &[], &[]);
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.data_dir, PathBuf::from(".cairn"));
    assert!(
        matches!(&config.database, DatabaseConfig::Sqlite { path, .. } if path == Path::new(".cairn/catalog.db"))
    );
    assert_eq!(config.log.format, LogFormat::Text);
}

#[test]
fn layers_override_in_order() {
    let file =
        "data_dir = \"/srv/cairn\"\n[server]\nlisten = \"0.0.0.0:9000\"\nmax_body_bytes = 1000\n";
    let config = load_ok(Some(file), &[], &[]);
    assert_eq!((config.listen.port(), config.max_body_bytes), (9000, 1000));
    assert_eq!(
        config.database.describe(),
        "SQLite at /srv/cairn/catalog.db",
        "the catalog follows data_dir"
    );

    let env = [
        ("CAIRN__SERVER__LISTEN", "127.0.0.1:9100"),
        ("CAIRN__LOG__FORMAT", "json"),
        ("UNRELATED", "x"),
    ];
    let config = load_ok(Some(file), &env, &[]);
    assert_eq!(
        (
            config.listen.port(),
            config.max_body_bytes,
            config.log.format
        ),
        (9100, 1000, LogFormat::Json)
    );
    assert_eq!(
        config.origins.of("server.listen"),
        Origin::Env("CAIRN__SERVER__LISTEN".into())
    );

    let flags = [("--listen", "server.listen", "\"127.0.0.1:9200\"")];
    let config = load_ok(Some(file), &env, &flags);
    assert_eq!(config.listen.port(), 9200);
    assert_eq!(
        config.origins.of("server.listen"),
        Origin::Flag("--listen".into())
    );
    assert!(matches!(
        config.origins.of("server.max_body_bytes"),
        Origin::File { line: Some(4), .. }
    ));
}

#[test]
fn postgres_is_chosen_by_url_and_its_password_never_printed() {
    let config = load_ok(
        None,
        &[(
            "CAIRN__DATABASE__URL",
            "postgres://cairn:s3cret@db:5432/cairn",
        )],
        &[],
    );
    assert_eq!(config.database.backend(), "postgres");
    let shown = format!("{} {:?}", config.database.describe(), config.database);
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(
        shown.contains("PostgreSQL at postgres://cairn:***@db:5432/cairn"),
        "{shown}"
    );
}

#[test]
fn typos_in_the_file_name_file_line_and_key() {
    check_error(
        Some("[server]\nlisten = \"127.0.0.1:8080\"\nlisten_adress = \"x\"\n"),
        &[],
        &[],
        &[
            "cairn.toml",
            "line 3",
            "unknown field `listen_adress`",
            "expected one of",
            "cairn.example.toml",
        ],
    );
    check_error(
        Some("[sever]\nlisten = \"x\"\n"),
        &[],
        &[],
        &["line 1", "unknown field `sever`"],
    );
}

#[test]
fn wrong_types_name_file_line_and_key() {
    check_error(
        Some("[server]\nmax_body_bytes = \"ten megabytes\"\n"),
        &[],
        &[],
        &["cairn.toml", "line 2", "max_body_bytes", "invalid type"],
    );
    check_error(
        Some("[log]\nformat = \"xml\"\n"),
        &[],
        &[],
        &[
            "line 2",
            "unknown variant `xml`",
            "expected `text` or `json`",
        ],
    );
    check_error(Some("[server\n"), &[], &[], &["cairn.toml", "line 1"]);
}

#[test]
fn bad_values_name_their_origin_and_the_fix() {
    check_error(
        Some("[database]\nurl = \"mysql://root@db/cairn\"\n"),
        &[],
        &[],
        &[
            "cairn.toml line 2",
            "`database.url`",
            "`mysql` scheme is not supported",
            "postgres://USER:PASSWORD@HOST:5432/DATABASE",
        ],
    );
    check_error(
        None,
        &[("CAIRN__DATABASE__URL", "postgres://user:pw@/db")],
        &[],
        &[
            "environment variable CAIRN__DATABASE__URL",
            "is not a valid URL (empty host)",
        ],
    );
    check_error(
        None,
        &[("CAIRN__DATABASE__URL", "sqlite::memory:")],
        &[],
        &["needs a file path"],
    );
    check_error(
        None,
        &[],
        &[("--listen", "server.listen", "\"localhost\"")],
        &["flag --listen", "`server.listen`", "127.0.0.1:8080"],
    );
    check_error(
        Some("[log]\nlevel = \"info,[\"\n"),
        &[],
        &[],
        &["`log.level`", "not a log filter"],
    );
}

#[test]
fn environment_typos_name_the_variable() {
    check_error(
        None,
        &[("CAIRN__SERVER__LISTN", "127.0.0.1:1")],
        &[],
        &[
            "environment variable CAIRN__SERVER__LISTN",
            "unknown field `listn`",
        ],
    );
    check_error(
        None,
        &[("CAIRN__SERVER__MAX_BODY_BYTES", "lots")],
        &[],
        &["CAIRN__SERVER__MAX_BODY_BYTES", "invalid type"],
    );
    check_error(
        None,
        &[("CAIRN__SERVER", "x")],
        &[],
        &["CAIRN__SERVER", "invalid type"],
    );
}

#[test]
fn a_missing_file_is_named() {
    let sources = Sources {
        file: Some(PathBuf::from("/nonexistent/cairn.toml")),
        ..Default::default()
    };
    let message = load(&sources).expect_err("refused").to_string();
    assert!(
        message.contains("cannot read config file /nonexistent/cairn.toml"),
        "{message}"
    );
}

#[test]
fn the_example_config_is_valid_and_complete() {
    let example = include_str!("../../../../cairn.example.toml");
    let raw: RawConfig =
        toml::from_str(example).expect("cairn.example.toml parses with every key known");
    let documented: Vec<String> = dotted_keys(&toml::from_str(example).expect("table"));
    let all: Vec<String> =
        dotted_keys(&toml::Table::try_from(RawConfig::default()).expect("defaults serialize"));
    for key in all.iter().filter(|key| {
        ![
            "models",
            "routes",
            "apps",
            "agents",
            "mcp_servers",
            "limits",
            "guards",
            "prompts.gates",
            "evals.online",
            "evals.continuous",
        ]
        .contains(&key.as_str())
    }) {
        assert!(
            documented.contains(key),
            "cairn.example.toml does not document `{key}`"
        );
    }
    assert_eq!(
        raw.server.listen,
        RawConfig::default().server.listen,
        "the example shows the defaults"
    );

    // The commented models-and-routes block is valid once uncommented, and shows every field.
    let block: String = example
        .lines()
        .skip_while(|line| !line.starts_with("# --- example: models and routes"))
        .skip(1)
        .take_while(|line| !line.starts_with("# --- end"))
        .map(|line| {
            format!(
                "{}\n",
                line.strip_prefix("# ")
                    .or_else(|| line.strip_prefix('#'))
                    .unwrap_or(line)
            )
        })
        .collect();
    let raw: RawConfig = toml::from_str(&block).expect("the example block parses");
    // `~` in a local model's path is the home directory: give it one with the model file in place.
    let home = tempfile::tempdir().expect("temp dir");
    let model_dir = home.path().join(".cache/cairn-models");
    std::fs::create_dir_all(&model_dir).expect("mkdir");
    std::fs::write(model_dir.join("smollm2-135m-instruct-q4_1.gguf"), b"GGUF").expect("write");
    let env = vec![
        ("AZURE_OPENAI_API_KEY".to_owned(), "k".to_owned()),
        ("TICKETS_MCP_TOKEN".to_owned(), "t".to_owned()),
        ("HOME".to_owned(), home.path().display().to_string()),
    ];
    let config = validate(raw, Origins::default(), &env).expect("the example block validates");
    assert_eq!(
        (
            config.models.len(),
            config.routes.len(),
            config.apps.len(),
            config.limits.len(),
            config.agents.len(),
            config.mcp_servers.len(),
        ),
        (3, 1, 1, 1, 1, 2)
    );
    let tokens: Vec<(&str, &str)> = config
        .mcp_tokens
        .iter()
        .map(|(var, token)| (var.as_str(), token.expose_secret()))
        .collect();
    assert_eq!(tokens, vec![("TICKETS_MCP_TOKEN", "t")]);
    assert!(
        !format!("{config:?}").contains("\"t\""),
        "the token never shows in the config's debug output"
    );
    assert!(
        matches!(&config.models[2].backend, ModelBackend::Local(cairn_local::LocalModelSource::Gguf(path)) if path.starts_with(home.path()))
    );
    for field in [
        "name",
        "provider",
        "base_url",
        "model",
        "api_version",
        "api_key_env",
        "bearer_token_env",
        "connect_timeout_secs",
        "read_timeout_secs",
        "breaker_failures",
        "breaker_cool_down_secs",
        "targets",
        "attempts_per_target",
        "deadline_secs",
        "collections",
        "prompt",
        "top_k",
        "context_tokens",
        "reasoning_price_per_mtok",
        "strategy",
        "weights",
        "shadow",
        "shadow_sample",
        "requests_per_minute",
        "tokens_per_minute",
        "cost_per_day_usd",
    ] {
        assert!(
            block.contains(field),
            "the example block does not show `{field}`"
        );
    }
}

#[test]
fn models_and_routes_are_checked() {
    let azure = "[[models]]\nname = \"az\"\nprovider = \"azure\"\nbase_url = \"https://x.openai.azure.com\"\napi_version = \"2024-10-21\"\napi_key_env = \"AZ_KEY\"\n";
    check_error(
        Some(azure),
        &[],
        &[],
        &[
            "cairn.toml line 1",
            "`models[0].api_key_env`",
            "environment variable AZ_KEY is not set",
        ],
    );
    let config = load_ok(Some(azure), &[("AZ_KEY", "secret")], &[]);
    assert!(
        !format!("{config:?}").contains("secret"),
        "keys never print"
    );
    check_error(
        Some("[[models]]\nname = \"m\"\nprovider = \"openai-compatible\"\n"),
        &[],
        &[],
        &["needs its server's base URL"],
    );
    check_error(
        Some("[[models]]\nname = \"m\"\nprovider = \"anthropic\"\n"),
        &[],
        &[],
        &["unknown variant `anthropic`", "line 3"],
    );
    let local = "[[models]]\nname = \"m\"\nprovider = \"openai-compatible\"\nbase_url = \"http://127.0.0.1:8000/v1\"\n";
    check_error(
        Some(&format!(
            "{local}[[routes]]\nname = \"r\"\ntargets = [\"m\", \"gpt\"]\n"
        )),
        &[],
        &[],
        &[
            "`routes[0].targets`",
            "no model is named `gpt`",
            "use one of: m",
        ],
    );
    check_error(
        Some(&format!(
            "{local}[[routes]]\nname = \"m\"\ntargets = [\"m\"]\n"
        )),
        &[],
        &[],
        &["already the name of a model"],
    );
    let config = load_ok(
        Some(&format!(
            "{local}[[routes]]\nname = \"r\"\ntargets = [\"m\"]\n"
        )),
        &[],
        &[],
    );
    assert!(
        matches!(&config.models[0].backend, ModelBackend::Remote { upstream_model, .. } if upstream_model == "m")
    );
    assert_eq!(config.routes[0].attempts_per_target, 2);
    assert_eq!(config.routes[0].strategy, RouteStrategy::Ordered);
    for (route, expected) in [
        (
            "strategy = \"weighted\"\nweights = [1]\n",
            &["`routes[0].weights`", "1 weights for 2 targets"][..],
        ),
        (
            "weights = [1, 1]\n",
            &["only read by the weighted strategy"][..],
        ),
        (
            "strategy = \"fastest\"\n",
            &["unknown variant `fastest`"][..],
        ),
        (
            "shadow = \"gpt\"\n",
            &["`routes[0].shadow`", "no model is named `gpt`"][..],
        ),
        (
            "shadow = \"m\"\nshadow_sample = 10.0\n",
            &["`routes[0].shadow_sample`", "from 0 to 1"][..],
        ),
    ] {
        check_error(
            Some(&format!(
                "{local}[[models]]\nname = \"n\"\nprovider = \"openai-compatible\"\nbase_url = \"http://127.0.0.1:8001/v1\"\n[[routes]]\nname = \"r\"\ntargets = [\"m\", \"n\"]\n{route}"
            )),
            &[],
            &[],
            expected,
        );
    }
    check_error(
        Some("[[limits]]\nkey = \"*\"\n"),
        &[],
        &[],
        &["`limits[0].requests_per_minute`", "sets no limit"],
    );
    check_error(
        Some("[[limits]]\ncost_per_day_usd = -1.0\n"),
        &[],
        &[],
        &["`limits[0].cost_per_day_usd`", "-1 is not a budget"],
    );
    let config = load_ok(
        Some("[[limits]]\nkey = \"*\"\nroute = \"gpt\"\nrequests_per_minute = 5\n"),
        &[],
        &[],
    );
    assert_eq!(
        config.limits,
        [cairn_gateway::LimitRule {
            route: cairn_gateway::Scope::Named("gpt".into()),
            key: cairn_gateway::Scope::Each,
            requests_per_minute: Some(5),
            tokens_per_minute: None,
            cost_per_day_usd: None,
        }]
    );

    check_error(
        Some("[[models]]\nname = \"l\"\nprovider = \"local\"\n"),
        &[],
        &[],
        &["`models[0].path`", "a local model needs `path`"],
    );
    check_error(
        Some("[[models]]\nname = \"l\"\nprovider = \"local\"\npath = \"/nope/model.gguf\"\n"),
        &[],
        &[],
        &["/nope/model.gguf does not exist"],
    );
    check_error(
        Some(&format!("{local}path = \"x.gguf\"\n")),
        &[],
        &[],
        &["`path` is for local models"],
    );
}

#[test]
fn the_embedded_chat_app_has_the_default_guards() {
    let config = load_ok(None, &[], &[]);
    let names: Vec<&str> = config.guards.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["pii", "injection"]);
    assert_eq!(config.apps[0].guards, ["pii", "injection"]);
}

#[test]
fn guards_are_checked_where_they_are_declared_and_named() {
    let app = "[[models]]\nname = \"m\"\nprovider = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\n\
               [[apps]]\nname = \"a\"\ncollections = [\"c\"]\nroute = \"m\"\n";
    check_error(
        Some(&format!(
            "{app}guards = [\"pii\"]\n[[guards]]\nname = \"pii\"\nkind = \"pi\"\nstages = [\"input\"]\naction = \"redact\"\n"
        )),
        &[],
        &[],
        &["line 12", "unknown variant `pi`", "pii"],
    );
    check_error(
        Some(&format!(
            "{app}guards = [\"pii\"]\n[[guards]]\nname = \"pii\"\nkind = \"pii\"\nstages = [\"input\"]\naction = \"redact\"\noptions = {{ words = [\"x\"] }}\n"
        )),
        &[],
        &[],
        &[
            "guards[0]",
            "option `words` does not apply to kind `pii`",
            "entities, restore, region",
        ],
    );
    check_error(
        Some(&format!("{app}guards = [\"nope\"]\n")),
        &[],
        &[],
        &[
            "apps[0].guards",
            "names guard `nope`, which is not declared",
        ],
    );
    check_error(
        Some(&format!(
            "{app}guards = [\"inj\"]\n[[guards]]\nname = \"inj\"\nkind = \"injection\"\nstages = [\"output\"]\naction = \"block\"\n"
        )),
        &[],
        &[],
        &["guard `inj`", "use stages input and retrieved_context"],
    );
}

#[test]
fn prompt_gates_read_their_suite_and_are_refused_when_it_is_missing_or_doubled() {
    let dir = tempfile::tempdir().expect("temp dir");
    let suite = dir.path().join("gate.yaml");
    std::fs::write(
        &suite,
        "name: docs-gate\ntarget: app:chat\ndataset:\n  cases:\n    - question: What is VACUUM?\nmetrics:\n  - metric: length\n    max: 100\n",
    )
    .expect("suite");
    let gate = |suite: &str| {
        format!(
            "[[prompts.gates]]\nprompt = \"rag_answer\"\nlabel = \"production\"\nsuite = \"{suite}\"\n"
        )
    };
    let config = load_ok(Some(&gate(&suite.display().to_string())), &[], &[]);
    assert_eq!(config.prompt_gates.len(), 1);
    assert_eq!(
        config.prompt_gates[0].gate.suite, "docs-gate",
        "the suite's own name"
    );
    assert_eq!(config.prompt_gates[0].suite_file, suite);

    check_error(
        Some(&gate("/nowhere/gate.yaml")),
        &[],
        &[],
        &[
            "prompts.gates[0].suite",
            "/nowhere/gate.yaml",
            "cairn eval run FILE",
        ],
    );
    let twice = format!(
        "{}{}",
        gate(&suite.display().to_string()),
        gate(&suite.display().to_string())
    );
    check_error(
        Some(&twice),
        &[],
        &[],
        &["prompts.gates[1].label", "gated twice"],
    );
}

#[test]
fn online_evaluation_rules_name_an_app_a_judge_a_share_and_known_metrics() {
    let base = "[[models]]\nname = \"writer\"\nprovider = \"openai-compatible\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n\
                [[apps]]\nname = \"docs\"\ncollections = [\"handbook\"]\nroute = \"writer\"\n";
    let rule = |body: &str| format!("{base}[[evals.online]]\n{body}");
    let config = load_ok(
        Some(&rule("app = \"docs\"\nsample = 0.1\njudge = \"writer\"\n")),
        &[],
        &[],
    );
    assert_eq!(
        config.evals.online[0].metrics,
        ["faithfulness", "answer_relevance"],
        "the default metrics"
    );
    for (body, fragments) in [
        (
            "app = \"docs\"\nsample = 0\njudge = \"writer\"\n",
            &["evals.online[0].sample", "above 0"][..],
        ),
        (
            "app = \"docs\"\nsample = 1\njudge = \"nobody\"\n",
            &["evals.online[0].judge", "writer"][..],
        ),
        (
            "app = \"docs\"\nsample = 1\njudge = \"writer\"\nmetrics = [\"answer_correctness\"]\n",
            &[
                "cannot be scored online",
                "faithfulness or answer_relevance",
            ][..],
        ),
    ] {
        check_error(Some(&rule(body)), &[], &[], fragments);
    }
}

#[test]
fn continuous_suites_need_a_trigger_and_a_suite_that_loads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let suite = dir.path().join("watch.yaml");
    std::fs::write(
        &suite,
        "name: watch\ntarget: app:chat\ndataset:\n  cases:\n    - question: What is VACUUM?\nmetrics:\n  - metric: length\n    max: 100\n",
    )
    .expect("suite");
    let rule = |suite: &str, triggers: &str| {
        format!("[[evals.continuous]]\nsuite = \"{suite}\"\n{triggers}")
    };
    let path = suite.display().to_string();
    let config = load_ok(Some(&rule(&path, "collections = [\"docs\"]\n")), &[], &[]);
    assert_eq!(config.evals.continuous[0].collections, ["docs"]);
    check_error(
        Some(&rule(&path, "")),
        &[],
        &[],
        &["evals.continuous[0].suite", "nothing triggers it"],
    );
    check_error(
        Some(&rule("/nowhere.yaml", "prompts = [\"rag_answer\"]\n")),
        &[],
        &[],
        &["evals.continuous[0].suite", "/nowhere.yaml"],
    );
}

#[test]
fn the_authentication_mode_follows_sign_in_and_bounds_where_cairn_listens() {
    let local = load_ok(None, &[], &[]).access;
    assert_eq!(local.mode, AuthMode::Local);
    assert!(
        local
            .check_listen("127.0.0.1:8080".parse().expect("addr"))
            .is_ok()
    );
    assert!(
        local
            .check_listen("[::1]:8080".parse().expect("addr"))
            .is_ok()
    );
    let refused = local
        .check_listen("0.0.0.0:8080".parse().expect("addr"))
        .expect_err("open to the network without authentication");
    assert!(
        refused.contains("mode = \"required\"") && refused.contains("mode = \"none\""),
        "{refused}"
    );
    let oidc = "[auth]\noidc_issuer = \"https://login.example.com\"\noidc_client_id = \"cairn\"\n";
    let signed = load_ok(Some(oidc), &[], &[]).access;
    assert_eq!(signed.mode, AuthMode::Required);
    assert!(
        signed
            .check_listen("0.0.0.0:8080".parse().expect("addr"))
            .is_ok()
    );
    let open = load_ok(None, &[("CAIRN__AUTH__MODE", "none")], &[]).access;
    assert!(
        open.check_listen("0.0.0.0:8080".parse().expect("addr"))
            .is_ok()
    );

    check_error(
        Some(&format!("{oidc}mode = \"local\"\n")),
        &[],
        &[],
        &["auth.mode", "`local` has no sign-in", "oidc_issuer"],
    );
    check_error(
        None,
        &[("CAIRN__AUTH__MODE", "open")],
        &[],
        &["CAIRN__AUTH__MODE", "unknown variant `open`"],
    );
    check_error(
        Some("[auth]\nuser_roles = [\"reader\"]\n"),
        &[],
        &[],
        &["auth.user_roles", "`reader` is not a role", "prompt_admin"],
    );
    check_error(
        Some("[server]\nallowed_hosts = [\"https://cairn.example.com\"]\n"),
        &[],
        &[],
        &["server.allowed_hosts", "is not a host name"],
    );
}
