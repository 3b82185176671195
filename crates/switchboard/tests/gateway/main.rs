//! The gateway end to end: `switchboard serve` as a real process, its REST API and MCP endpoints
//! over real HTTP, real upstreams and clients of both protocol eras (the Python and TypeScript
//! SDKs, server-everything, the MCP Inspector), on SQLite and on the local PostgreSQL. One test
//! binary, a module a theme.

#[path = "../common/mod.rs"]
mod common;
mod console;
mod console_servers;
mod eras;
mod fidelity;
mod grants;
mod helpers;
mod operations;
mod progress;
mod registry;
mod replicas;
mod safety;
mod self_service;
mod sessions;
mod sign_in;
mod sign_in_refusals;

use std::{path::Path, time::Duration};

use common::{await_tool_text, binary, mcp_client, register, remote_body, run_client, serve};
use helpers::*;
use reqwest::Method;
use serde_json::{Value, json};
use switchboard_test_support::{
    Reply, ScriptedLlm, Switchboard, eventually, peers_dir, pids_with_env, start_python,
};
