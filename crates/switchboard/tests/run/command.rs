//! `switchboard run`: a spec or flags, pinned parameters, masked secrets, what a terminal sees.

use super::*;

/// Runs `command` and checks that it succeeded, showing its stderr if not.
async fn succeeded(command: &mut tokio::process::Command) -> std::process::Output {
    let output = command.output().await.expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[tokio::test]
async fn cli_run_with_a_spec_pins_params_and_masks_secrets() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let llm = ScriptedLlm::start(vec![
        Reply::calls(&[("add_forty", json!({"a": 2})), ("whoami", json!({}))]),
        Reply::Text {
            content: "42".into(),
            usage: Some(usage(7, 3)),
        },
    ])
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = dir.path().join("agent.yaml");
    std::fs::write(
        &spec,
        format!(
            r#"model: scripted-model
base_url: {base}
max_steps: 3
system_prompt: Be brief.
tools:
  - kind: mcp
    server: {url}
    headers:
      Authorization: "Bearer {{{{secrets.MCP_TOKEN}}}}"
    tools:
      - whoami
      - tool: add
        name: add_forty
        description: Adds forty.
        params:
          b: 40
"#,
            base = llm.base_url(),
            url = python.url("/mcp"),
        ),
    )
    .expect("spec written");
    let secrets = dir.path().join("secrets.env");
    std::fs::write(&secrets, "MCP_TOKEN=mcp-token-from-file-77\n").expect("secrets written");
    let output = succeeded(
        tokio::process::Command::new(binary())
            .arg("run")
            .arg(&spec)
            .arg("What is 2 plus forty?")
            .arg("--secrets-file")
            .arg(&secrets)
            .arg("--json")
            .env("OPENAI_API_KEY", "sk-cli-key-0001"),
    )
    .await;
    let result: Value = serde_json::from_slice(&output.stdout).expect("JSON result");
    assert_eq!(result["final_answer"], "42");
    assert_eq!(result["stop_reason"], "final_answer");
    assert_eq!(as_usage(&result["token_usage"]), (27, 13, 40));

    let first = &llm.requests()[0];
    assert_eq!(first.messages()[0]["content"], "Be brief.");
    assert_eq!(
        first.authorization.as_deref(),
        Some("Bearer sk-cli-key-0001")
    );
    let mut names = first.tool_names();
    names.sort();
    assert_eq!(names, ["add_forty", "whoami"]);
    let add = first.tool("add_forty").expect("offered");
    assert_eq!(add["description"], "Adds forty.");
    assert_eq!(
        add["parameters"]["required"],
        json!(["a"]),
        "the pinned `b` is hidden"
    );
    assert!(add["parameters"]["properties"].get("b").is_none());
    let second = &llm.requests()[1];
    assert_eq!(
        second.tool_message("call_0").as_deref(),
        Some(r#"{"result":42}"#)
    );
    // The header went upstream, and the secret in the tool's answer was masked for the model.
    assert_eq!(
        second.tool_message("call_1").as_deref(),
        Some(r#"{"result":"Bearer ***"}"#)
    );

    // Without --json, the final answer alone.
    let llm = ScriptedLlm::start(vec![Reply::text("plain answer")]).await;
    let output = succeeded(tokio::process::Command::new(binary()).args([
        "run",
        "--model",
        "m",
        "--base-url",
        &llm.base_url(),
        "say hi",
    ]))
    .await;
    assert_eq!(String::from_utf8_lossy(&output.stdout), "plain answer\n");
}

#[tokio::test]
async fn cli_flags_stand_in_for_a_spec_and_a_terminal_sees_each_step() {
    let python = start_python("streamable-http")
        .await
        .expect("python fixture");
    let llm = ScriptedLlm::start(vec![
        Reply::calls(&[
            ("get-sum", json!({"a": 1, "b": 2})),
            ("fail", json!({"reason": "nope"})),
        ]),
        Reply::text("three"),
    ])
    .await;
    let (command, args) = everything_stdio_command();
    let stdio = format!("{command} {}", args.join(" "));
    // `script` gives the command a terminal, where progress is shown.
    let line = format!(
        "{} run --model m --base-url {} --mcp-stdio '{stdio}' --mcp-url {} 'add one and two'",
        binary().display(),
        llm.base_url(),
        python.url("/mcp"),
    );
    let output = tokio::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .output()
        .await
        .expect("runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("step 1: calling get-sum, fail"), "{text}");
    assert!(text.contains("✓ get-sum ("), "{text}");
    assert!(text.contains("✗ fail ("), "{text}");
    assert!(text.trim_end().ends_with("three"), "{text}");
    let mut offered = llm.requests()[0].tool_names();
    offered.sort();
    assert!(offered.contains(&"get-sum".to_string()) && offered.contains(&"add".to_string()));
}

#[tokio::test]
async fn the_servers_key_is_used_when_a_request_brings_none() {
    let llm = ScriptedLlm::start(vec![Reply::text("a"), Reply::text("b")]).await;
    let server = Switchboard::start(binary(), &[], &[("OPENAI_API_KEY", "sk-server-default-9")])
        .await
        .expect("starts");
    let body = json!({"task": "t", "model": "m", "base_url": format!("{}/chat/completions", llm.base_url()),
        "temperature": 0.25, "system_prompt": "Answer in one word."});
    let (status, result) = server.post_run(&body).await.expect("answers");
    assert_eq!(status, 200, "{result}");
    let request = &llm.requests()[0];
    assert_eq!(
        request.authorization.as_deref(),
        Some("Bearer sk-server-default-9")
    );
    assert_eq!(request.body["temperature"], 0.25);
    assert_eq!(request.messages()[0]["content"], "Answer in one word.");
    assert!(!server.log().contains("sk-server-default-9"));

    let server = Switchboard::start(
        binary(),
        &["--llm-api-key", "sk-flag-key-10"],
        &[("OPENAI_API_KEY", "sk-server-default-9")],
    )
    .await
    .expect("starts");
    let (status, _) = server.post_run(&body).await.expect("answers");
    assert_eq!(status, 200);
    assert_eq!(
        llm.requests()[1].authorization.as_deref(),
        Some("Bearer sk-flag-key-10")
    );
}
