//! The JSON Schema of a policy file, for editors (taplo, Even Better TOML) and CI linters.

use serde_json::{Value, json};

/// The JSON Schema (draft 2020-12) of a policy file, as printed by
/// `privacy-router policy schema`.
///
/// It describes the shape; [`PolicySet::load_dir`](super::PolicySet::load_dir) checks
/// more (detector ids exist, regexes compile, dictionary files exist, examples hold,
/// `extends` has no cycle).
///
/// ```
/// let schema = privacy_router::policy::json_schema();
/// assert_eq!(schema["properties"]["default"]["enum"][0], "allow");
/// ```
pub fn json_schema() -> Value {
    let actions = json!(["allow", "redact", "route_local", "block"]);
    let categories = json!(["pii", "financial", "secret", "network", "confidential"]);
    let name = json!({ "type": "string", "pattern": "^[a-z0-9_-]{1,64}$" });
    let one_or_many = |item: Value| json!({ "oneOf": [item, { "type": "array", "items": item }] });
    let strings = json!({ "type": "array", "items": { "type": "string" } });
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/privacy-router/privacy-router/policy.schema.json",
        "title": "privacy-router team policy",
        "description": "One team's policy: which detectors run, what their findings lead to, and where requests that stay in-house go. See docs/policy.md.",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "extends": { "description": "The file stem of a policy in the same directory whose settings this file starts from.", "type": "string", "pattern": "^[a-z0-9_-]{1,64}$" },
            "team": { "description": "The team this file defines. Files without `team` are bases only. One file must define `default`.", "type": "string", "pattern": "^[a-z0-9_-]{1,64}$" },
            "description": { "type": "string" },
            "detectors": {
                "description": "Which detectors run.",
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "categories": { "type": "array", "items": { "enum": categories } },
                    "enable": { "type": "array", "items": { "type": "string" } },
                    "disable": { "type": "array", "items": { "type": "string" } },
                    "min_confidence": { "type": "number", "minimum": 0.0, "maximum": 1.0 },
                    "internal_suffixes": strings,
                    "all_builtin": { "type": "boolean" }
                }
            },
            "detector": {
                "description": "Team detectors, in the format of patterns/*.toml.",
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["id", "category", "description", "regex", "confidence"],
                    "properties": {
                        "id": name,
                        "category": { "enum": categories },
                        "description": { "type": "string" },
                        "regex": { "type": "string" },
                        "keywords": strings,
                        "validator": { "type": "string" },
                        "min_entropy": { "type": "number", "minimum": 0.0 },
                        "confidence": { "type": "number", "minimum": 0.0, "maximum": 1.0 },
                        "default": { "type": "boolean" },
                        "allow": strings,
                        "must_match": strings,
                        "must_not_match": strings,
                        "context": {
                            "type": "object",
                            "additionalProperties": false,
                            "properties": {
                                "window": { "type": "integer", "minimum": 0 },
                                "require": strings,
                                "boost": strings,
                                "exclude": strings
                            }
                        }
                    }
                }
            },
            "dictionaries": {
                "description": "Term files (one term per line), category `confidential`. Paths are relative to the policy file.",
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["name", "path"],
                    "properties": { "name": name, "path": { "type": "string" } }
                }
            },
            "allow": {
                "description": "Values that are never findings for this team: an exact literal, or a regex that must match the whole value.",
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "oneOf": [{ "required": ["literal"] }, { "required": ["regex"] }],
                    "properties": { "literal": { "type": "string" }, "regex": { "type": "string" } }
                }
            },
            "rules": {
                "description": "Findings to actions. The most restrictive matching rule wins.",
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["when", "action"],
                    "properties": {
                        "when": {
                            "type": "object",
                            "additionalProperties": false,
                            "properties": {
                                "category": one_or_many(json!({ "enum": categories })),
                                "detector": one_or_many(json!({ "type": "string" })),
                                "min_count": { "type": "integer", "minimum": 1 }
                            }
                        },
                        "action": { "enum": actions }
                    }
                }
            },
            "default": { "description": "The action when no rule matches.", "enum": actions },
            "on_error": { "description": "When inspection cannot complete. Default: route_local with a [local] target, else block.", "enum": ["route_local", "block"] },
            "on_unscannable": { "description": "For images, audio and files. Default: route_local with a [local] target, else block.", "enum": ["allow", "route_local", "block"] },
            "local": {
                "description": "The self-hosted, OpenAI-compatible model.",
                "type": "object",
                "additionalProperties": false,
                "required": ["base_url"],
                "properties": {
                    "base_url": { "type": "string", "pattern": "^https?://" },
                    "api": { "enum": ["openai"] },
                    "models": { "type": "object", "additionalProperties": { "type": "string" } },
                    "token_env": { "type": "string" },
                    "token_file": { "type": "string" },
                    "timeout": { "type": "string", "pattern": "^[0-9]+(ms|s|m)$" }
                },
                "not": { "required": ["token_env", "token_file"] }
            }
        }
    })
}
