//! One policy file: its schema, read with positions, every problem collected.
//!
//! *Rejected: `#[derive(Deserialize)]` with `deny_unknown_fields`.* Serde stops at the
//! first problem in a document, and a policy author fixing a file in CI should see every
//! problem in one run. The file is parsed into toml's spanned document tree
//! (`toml::de::DeTable`, which also recovers from syntax errors) and walked by hand; each
//! problem becomes a [`Diagnostic`] and the walk goes on. Team detectors are the one place
//! serde is used: they are deserialized into the scanner's own `DetectorSpec`, so the
//! schema of `patterns/*.toml` is defined once.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use regex::{Regex, RegexBuilder};
use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::scan::detector::{DetectorSpec, REGEX_SIZE_LIMIT};
use crate::scan::validate::Validator;
use crate::scan::{Category, Dictionary, Scanner};

use super::decide::Action;
use super::diagnostic::Diagnostic;
use super::target::{self, DEFAULT_TIMEOUT, LocalApi, LocalTarget, TokenSource};

/// A value and where it is written.
#[derive(Clone, Debug)]
pub(crate) struct Sp<T> {
    pub(crate) value: T,
    pub(crate) span: Range<usize>,
}

/// A policy file's text and names.
#[derive(Debug)]
pub(crate) struct Source {
    /// The path shown in diagnostics (the directory given to `load_dir`, joined).
    pub(crate) path: PathBuf,
    /// The file name relative to the policy directory: `payments.toml`.
    pub(crate) rel: String,
    /// The name other files use in `extends`: the file stem.
    pub(crate) name: String,
    pub(crate) text: String,
}

/// `[detectors]`: which detectors run.
#[derive(Debug, Default)]
pub(crate) struct Selection {
    pub(crate) categories: Option<Vec<Category>>,
    pub(crate) enable: Vec<Sp<String>>,
    pub(crate) disable: Vec<Sp<String>>,
    pub(crate) min_confidence: Option<f32>,
    pub(crate) internal_suffixes: Option<Vec<String>>,
    pub(crate) all_builtin: Option<bool>,
}

/// A `[[dictionaries]]` entry whose file was read.
#[derive(Debug)]
pub(crate) struct DictEntry {
    pub(crate) name: Sp<String>,
    pub(crate) dictionary: Dictionary,
    /// The term file's bytes, for the content hash.
    pub(crate) bytes: Vec<u8>,
    pub(crate) rel: String,
}

/// A `[[detector]]` table that compiled and passed its own examples.
#[derive(Debug)]
pub(crate) struct CustomDetector {
    pub(crate) id: Sp<String>,
    /// The table re-serialized as a pattern file (`[[detector]]`), for
    /// `ScannerBuilder::detectors_toml`.
    pub(crate) toml: String,
}

/// An `[[allow]]` entry.
#[derive(Debug)]
pub(crate) enum AllowEntry {
    Literal(String),
    /// Anchored: the regex must match the whole value.
    Regex(Regex),
}

/// A `[[rules]]` entry.
#[derive(Debug)]
pub(crate) struct RuleEntry {
    pub(crate) categories: Vec<Category>,
    pub(crate) detectors: Vec<Sp<String>>,
    pub(crate) min_count: usize,
    pub(crate) action: Sp<Action>,
    pub(crate) line: usize,
    pub(crate) condition: String,
}

/// A policy file as written, checked on its own (without the files it extends).
#[derive(Debug, Default)]
pub(crate) struct PolicyFile {
    pub(crate) extends: Option<Sp<String>>,
    pub(crate) team: Option<Sp<String>>,
    pub(crate) selection: Selection,
    pub(crate) dictionaries: Vec<DictEntry>,
    pub(crate) custom: Vec<CustomDetector>,
    pub(crate) allow: Vec<AllowEntry>,
    pub(crate) rules: Vec<RuleEntry>,
    pub(crate) default: Option<Sp<Action>>,
    pub(crate) local: Option<Sp<LocalTarget>>,
    pub(crate) on_error: Option<Sp<Action>>,
    pub(crate) on_unscannable: Option<Sp<Action>>,
    /// Detector ids and dictionary names written in the file, valid or not: references
    /// to an invalid one are not reported again as unknown.
    pub(crate) declared: Vec<String>,
    /// Whether the file has a `[local]` table, valid or not: an invalid one is reported
    /// as such, not again as a missing target.
    pub(crate) local_written: bool,
}

const TOP_KEYS: &[&str] = &[
    "extends",
    "team",
    "description",
    "detectors",
    "detector",
    "dictionaries",
    "allow",
    "rules",
    "default",
    "local",
    "on_error",
    "on_unscannable",
];
const SELECTION_KEYS: &[&str] = &[
    "categories",
    "enable",
    "disable",
    "min_confidence",
    "internal_suffixes",
    "all_builtin",
];
const DETECTOR_KEYS: &[&str] = &[
    "id",
    "category",
    "description",
    "regex",
    "keywords",
    "validator",
    "min_entropy",
    "confidence",
    "default",
    "allow",
    "must_match",
    "must_not_match",
    "context",
];
const CONTEXT_KEYS: &[&str] = &["window", "require", "boost", "exclude"];
const LOCAL_KEYS: &[&str] = &[
    "base_url",
    "api",
    "models",
    "token_env",
    "token_file",
    "timeout",
];

/// Team-written allowlist regexes get a tighter bound than detectors: they run on every
/// finding's value.
const ALLOW_REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Parses and checks one file. Problems are pushed to `diags`; the result holds everything
/// that was valid.
pub(crate) fn parse(
    src: &Source,
    builtin_ids: &[String],
    diags: &mut Vec<Diagnostic>,
) -> PolicyFile {
    let (doc, errors) = DeTable::parse_recoverable(&src.text);
    let mut r = Reader { src, diags };
    if !errors.is_empty() {
        for e in errors {
            let span = e.span().unwrap_or(0..0);
            r.error(span, "syntax", e.message().trim().to_string());
        }
        // A broken document's tree is a best guess; checking it would mostly repeat the
        // syntax errors in other words.
        return PolicyFile::default();
    }
    let doc = doc.into_inner();
    r.keys(&doc, "the policy file", TOP_KEYS);
    let mut file = PolicyFile {
        extends: doc.get("extends").and_then(|v| r.name(v, "`extends`")),
        team: doc.get("team").and_then(|v| r.name(v, "`team`")),
        ..PolicyFile::default()
    };
    if let Some(v) = doc.get("description") {
        r.string(v, "`description`");
    }
    if let Some(v) = doc.get("detectors") {
        file.selection = r.selection(v);
    }
    for key in ["detector", "dictionaries"] {
        let tables = doc.get(key).and_then(|v| v.get_ref().as_array());
        for t in tables.into_iter().flat_map(|a| a.iter()) {
            let name = t
                .get_ref()
                .get(if key == "detector" { "id" } else { "name" });
            if let Some(name) = name.and_then(|n| n.get_ref().as_str()) {
                file.declared.push(name.to_string());
            }
        }
    }
    file.local_written = doc.get("local").is_some();
    for (v, _) in r.tables(doc.get("detector"), "`[[detector]]`") {
        if let Some(d) = r.custom_detector(v, builtin_ids) {
            file.custom.push(d);
        }
    }
    for (v, t) in r.tables(doc.get("dictionaries"), "`[[dictionaries]]`") {
        if let Some(d) = r.dictionary(v, t) {
            file.dictionaries.push(d);
        }
    }
    for (v, t) in r.tables(doc.get("allow"), "`[[allow]]`") {
        if let Some(a) = r.allow(v, t) {
            file.allow.push(a);
        }
    }
    for (v, t) in r.tables(doc.get("rules"), "`[[rules]]`") {
        if let Some(rule) = r.rule(v, t) {
            file.rules.push(rule);
        }
    }
    file.default = doc
        .get("default")
        .and_then(|v| r.action(v, "`default`", &Action::ALL));
    file.on_error = doc
        .get("on_error")
        .and_then(|v| r.action(v, "`on_error`", &[Action::RouteLocal, Action::Block]));
    file.on_unscannable = doc.get("on_unscannable").and_then(|v| {
        r.action(
            v,
            "`on_unscannable`",
            &[Action::Allow, Action::RouteLocal, Action::Block],
        )
    });
    if let Some(v) = doc.get("local") {
        file.local = r.local(v);
    }
    file
}

struct Reader<'s, 'd> {
    src: &'s Source,
    diags: &'d mut Vec<Diagnostic>,
}

type Value<'i> = Spanned<DeValue<'i>>;

impl Reader<'_, '_> {
    fn error(
        &mut self,
        span: Range<usize>,
        code: &'static str,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.diags.push(Diagnostic::at(
            &self.src.path,
            &self.src.text,
            span,
            code,
            message,
        ));
        self.diags.last_mut().expect("just pushed")
    }

    fn line_of(&self, offset: usize) -> usize {
        self.src.text[..offset.min(self.src.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    /// Reports every key of `table` that is not in `known`, with a suggestion when one is
    /// close.
    fn keys(&mut self, table: &DeTable<'_>, what: &str, known: &[&str]) {
        for key in table.keys() {
            let k: &str = key.get_ref();
            if known.contains(&k) {
                continue;
            }
            let d = self.error(
                key.span(),
                "unknown-key",
                format!("unknown key `{k}` in {what}"),
            );
            d.help = Some(if known != TOP_KEYS && TOP_KEYS.contains(&k) {
                // The classic TOML trap: a key written after a `[table]` header belongs to
                // that table.
                format!("`{k}` is a top-level key: move it above the first `[table]` header")
            } else if let Some(s) = closest(k, known) {
                format!("did you mean `{s}`?")
            } else {
                format!("expected one of: {}", known.join(", "))
            });
        }
    }

    fn wrong_type(&mut self, v: &Value<'_>, what: &str, expected: &str) {
        self.error(
            v.span(),
            "wrong-type",
            format!("{what} must be {expected}, not {}", type_name(v.get_ref())),
        );
    }

    fn string(&mut self, v: &Value<'_>, what: &str) -> Option<Sp<String>> {
        match v.get_ref().as_str() {
            Some(s) => Some(Sp {
                value: s.to_string(),
                span: v.span(),
            }),
            None => {
                self.wrong_type(v, what, "a string");
                None
            }
        }
    }

    /// A team, file or dictionary name: lowercase ASCII letters, digits, `-` and `_`.
    fn name(&mut self, v: &Value<'_>, what: &str) -> Option<Sp<String>> {
        let s = self.string(v, what)?;
        if is_name(&s.value) {
            Some(s)
        } else {
            self.error(
                s.span,
                "bad-name",
                format!("{what} must be lowercase ASCII letters, digits, `-` and `_`"),
            );
            None
        }
    }

    /// A string or an array of strings.
    fn strings(&mut self, v: &Value<'_>, what: &str) -> Option<Vec<Sp<String>>> {
        match v.get_ref() {
            DeValue::String(s) => Some(vec![Sp {
                value: s.to_string(),
                span: v.span(),
            }]),
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for item in items.iter() {
                    out.push(self.string(item, what)?);
                }
                Some(out)
            }
            _ => {
                self.wrong_type(v, what, "a string or an array of strings");
                None
            }
        }
    }

    fn number(&mut self, v: &Value<'_>, what: &str) -> Option<f64> {
        match v.get_ref() {
            DeValue::Float(f) => f.as_str().replace('_', "").parse().ok(),
            DeValue::Integer(i) if i.radix() == 10 => i.as_str().replace('_', "").parse().ok(),
            _ => {
                self.wrong_type(v, what, "a number");
                None
            }
        }
    }

    fn integer(&mut self, v: &Value<'_>, what: &str) -> Option<i64> {
        match v.get_ref().as_integer() {
            Some(i) => match i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.error(v.span(), "wrong-type", format!("{what} is out of range"));
                    None
                }
            },
            None => {
                self.wrong_type(v, what, "an integer");
                None
            }
        }
    }

    fn bool(&mut self, v: &Value<'_>, what: &str) -> Option<bool> {
        match v.get_ref().as_bool() {
            Some(b) => Some(b),
            None => {
                self.wrong_type(v, what, "true or false");
                None
            }
        }
    }

    fn table<'v, 'i>(&mut self, v: &'v Value<'i>, what: &str) -> Option<&'v DeTable<'i>> {
        match v.get_ref().as_table() {
            Some(t) => Some(t),
            None => {
                self.wrong_type(v, what, "a table");
                None
            }
        }
    }

    /// The tables of an array of tables (`[[rules]]`), each with its value.
    fn tables<'v, 'i>(
        &mut self,
        v: Option<&'v Value<'i>>,
        what: &str,
    ) -> Vec<(&'v Value<'i>, &'v DeTable<'i>)> {
        let Some(v) = v else { return Vec::new() };
        let Some(items) = v.get_ref().as_array() else {
            self.wrong_type(v, what, "an array of tables");
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items.iter() {
            if let Some(t) = self.table(item, what) {
                out.push((item, t));
            }
        }
        out
    }

    fn action(&mut self, v: &Value<'_>, what: &str, allowed: &[Action]) -> Option<Sp<Action>> {
        let s = self.string(v, what)?;
        let names: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
        match Action::from_name(&s.value) {
            Some(a) if allowed.contains(&a) => Some(Sp {
                value: a,
                span: s.span,
            }),
            Some(a) => {
                self.error(
                    s.span,
                    "action-not-allowed",
                    format!("{what} cannot be `{a}`"),
                )
                .help = Some(format!("expected one of: {}", names.join(", ")));
                None
            }
            None => {
                let d = self.error(
                    s.span,
                    "unknown-action",
                    format!("unknown action `{}`", s.value),
                );
                d.help = Some(format!("expected one of: {}", names.join(", ")));
                None
            }
        }
    }

    fn category(&mut self, s: &Sp<String>) -> Option<Category> {
        let c = Category::from_name(&s.value);
        if c.is_none() {
            let names: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
            self.error(
                s.span.clone(),
                "unknown-category",
                format!("unknown category `{}`", s.value),
            )
            .help = Some(format!("expected one of: {}", names.join(", ")));
        }
        c
    }

    fn selection(&mut self, v: &Value<'_>) -> Selection {
        let mut sel = Selection::default();
        let Some(t) = v.get_ref().as_table() else {
            self.wrong_type(v, "`[detectors]`", "a table");
            if v.get_ref().is_array() {
                let last = self.diags.last_mut().expect("just pushed");
                last.help = Some(
                    "team detectors are `[[detector]]` tables (singular, as in patterns/*.toml); \
                     `[detectors]` selects detectors"
                        .to_string(),
                );
            }
            return sel;
        };
        self.keys(t, "`[detectors]`", SELECTION_KEYS);
        if let Some(v) = t.get("categories")
            && let Some(list) = self.strings(v, "`categories`")
        {
            sel.categories = Some(list.iter().filter_map(|s| self.category(s)).collect());
        }
        if let Some(v) = t.get("enable") {
            sel.enable = self.strings(v, "`enable`").unwrap_or_default();
        }
        if let Some(v) = t.get("disable") {
            sel.disable = self.strings(v, "`disable`").unwrap_or_default();
        }
        if let Some(v) = t.get("min_confidence")
            && let Some(x) = self.number(v, "`min_confidence`")
        {
            if (0.0..=1.0).contains(&x) {
                sel.min_confidence = Some(x as f32);
            } else {
                self.error(
                    v.span(),
                    "out-of-range",
                    "`min_confidence` must be between 0.0 and 1.0",
                );
            }
        }
        if let Some(v) = t.get("internal_suffixes") {
            sel.internal_suffixes = self
                .strings(v, "`internal_suffixes`")
                .map(|l| l.into_iter().map(|s| s.value).collect());
        }
        if let Some(v) = t.get("all_builtin") {
            sel.all_builtin = self.bool(v, "`all_builtin`");
        }
        sel
    }

    fn dictionary(&mut self, v: &Value<'_>, t: &DeTable<'_>) -> Option<DictEntry> {
        self.keys(t, "`[[dictionaries]]`", &["name", "path"]);
        let name = self
            .required(v, t, "name", "`[[dictionaries]]`")
            .and_then(|n| self.name(n, "`name`"));
        let path = self
            .required(v, t, "path", "`[[dictionaries]]`")
            .and_then(|p| self.string(p, "`path`"));
        let (name, path) = (name?, path?);
        let file = target::relative_to(&self.src.path, &path.value);
        match std::fs::read(&file) {
            Ok(bytes) => {
                let Ok(text) = std::str::from_utf8(&bytes) else {
                    self.error(
                        path.span,
                        "missing-dictionary",
                        format!("{} is not UTF-8 text", file.display()),
                    );
                    return None;
                };
                let dictionary = Dictionary::parse(&name.value, text);
                Some(DictEntry {
                    rel: path.value.clone(),
                    name,
                    dictionary,
                    bytes,
                })
            }
            Err(e) => {
                self.error(
                    path.span,
                    "missing-dictionary",
                    format!(
                        "cannot read dictionary file {}: {}",
                        file.display(),
                        io_reason(&e)
                    ),
                );
                None
            }
        }
    }

    fn required<'v, 'i>(
        &mut self,
        v: &Value<'_>,
        t: &'v DeTable<'i>,
        key: &str,
        what: &str,
    ) -> Option<&'v Value<'i>> {
        let found = t.get(key);
        if found.is_none() {
            self.error(v.span(), "missing-key", format!("{what} needs `{key}`"));
        }
        found
    }

    fn allow(&mut self, v: &Value<'_>, t: &DeTable<'_>) -> Option<AllowEntry> {
        self.keys(t, "`[[allow]]`", &["literal", "regex"]);
        match (t.get("literal"), t.get("regex")) {
            (Some(l), None) => self
                .string(l, "`literal`")
                .map(|s| AllowEntry::Literal(s.value)),
            (None, Some(r)) => {
                let s = self.string(r, "`regex`")?;
                match RegexBuilder::new(&format!("^(?:{})$", s.value))
                    .size_limit(ALLOW_REGEX_SIZE_LIMIT)
                    .build()
                {
                    Ok(re) => Some(AllowEntry::Regex(re)),
                    Err(e) => {
                        self.error(
                            s.span,
                            "invalid-regex",
                            format!("invalid regex: {}", regex_reason(&e.to_string())),
                        );
                        None
                    }
                }
            }
            _ => {
                self.error(
                    v.span(),
                    "bad-allow",
                    "an `[[allow]]` entry has exactly one of `literal` or `regex`",
                );
                None
            }
        }
    }

    fn rule(&mut self, v: &Value<'_>, t: &DeTable<'_>) -> Option<RuleEntry> {
        self.keys(t, "`[[rules]]`", &["when", "action"]);
        let action = self
            .required(v, t, "action", "`[[rules]]`")
            .and_then(|a| self.action(a, "`action`", &Action::ALL));
        let mut categories = Vec::new();
        let mut detectors = Vec::new();
        let mut min_count = 1;
        let mut parts = Vec::new();
        if let Some(when) = self.required(v, t, "when", "`[[rules]]`") {
            let w = self.table(when, "`when`")?;
            self.keys(w, "`when`", &["category", "detector", "min_count"]);
            if let Some(c) = w.get("category") {
                let list = self.strings(c, "`category`")?;
                categories = list.iter().filter_map(|s| self.category(s)).collect();
                if categories.len() != list.len() {
                    return None;
                }
                parts.push(format!(
                    "category = {}",
                    show_list(list.iter().map(|s| s.value.as_str()))
                ));
            }
            if let Some(d) = w.get("detector") {
                detectors = self.strings(d, "`detector`")?;
                parts.push(format!(
                    "detector = {}",
                    show_list(detectors.iter().map(|s| s.value.as_str()))
                ));
            }
            if let Some(n) = w.get("min_count") {
                let count = self.integer(n, "`min_count`")?;
                if count < 1 {
                    self.error(n.span(), "out-of-range", "`min_count` must be at least 1");
                    return None;
                }
                min_count = usize::try_from(count).unwrap_or(usize::MAX);
                parts.push(format!("min_count = {count}"));
            }
        }
        if parts.is_empty() {
            parts.push("any finding".to_string());
        }
        let action = action?;
        Some(RuleEntry {
            categories,
            detectors,
            min_count,
            line: self.line_of(v.span().start),
            action,
            condition: parts.join(", "),
        })
    }

    fn local(&mut self, v: &Value<'_>) -> Option<Sp<LocalTarget>> {
        let t = self.table(v, "`[local]`")?;
        self.keys(t, "`[local]`", LOCAL_KEYS);
        let base_url = self
            .required(v, t, "base_url", "`[local]`")
            .and_then(|u| self.string(u, "`base_url`"))
            .and_then(|u| match target::check_base_url(&u.value) {
                Ok(url) => Some(url),
                Err(why) => {
                    self.error(u.span, "bad-url", format!("invalid `base_url`: {why}"));
                    None
                }
            });
        let mut ok = base_url.is_some();
        let api = match t.get("api").map(|a| (a, self.string(a, "`api`"))) {
            None => LocalApi::OpenAi,
            Some((_, Some(s))) if s.value == "openai" => LocalApi::OpenAi,
            Some((_, Some(s))) => {
                self.error(s.span, "unknown-api", format!("unknown API `{}`", s.value))
                    .help = Some("expected: openai".to_string());
                ok = false;
                LocalApi::OpenAi
            }
            Some((_, None)) => {
                ok = false;
                LocalApi::OpenAi
            }
        };
        let mut models = BTreeMap::new();
        let mut fallback_model = None;
        if let Some(m) = t.get("models") {
            match self.table(m, "`models`") {
                Some(mt) => {
                    for (k, to) in mt.iter() {
                        let Some(to) = self.string(to, "a model name") else {
                            ok = false;
                            continue;
                        };
                        if k.get_ref() == "*" {
                            fallback_model = Some(to.value);
                        } else {
                            models.insert(k.get_ref().to_string(), to.value);
                        }
                    }
                }
                None => ok = false,
            }
        }
        let token = match (t.get("token_env"), t.get("token_file")) {
            (Some(_), Some(f)) => {
                self.error(
                    f.span(),
                    "conflicting-keys",
                    "`[local]` takes `token_env` or `token_file`, not both",
                );
                ok = false;
                TokenSource::None
            }
            (Some(e), None) => match self.string(e, "`token_env`") {
                Some(name) if !name.value.is_empty() && !name.value.contains(['=', '\0']) => {
                    TokenSource::Env(name.value)
                }
                Some(name) => {
                    self.error(
                        name.span,
                        "bad-name",
                        "`token_env` must name an environment variable",
                    );
                    ok = false;
                    TokenSource::None
                }
                None => {
                    ok = false;
                    TokenSource::None
                }
            },
            (None, Some(f)) => match self.string(f, "`token_file`") {
                Some(path) => TokenSource::File(target::relative_to(&self.src.path, &path.value)),
                None => {
                    ok = false;
                    TokenSource::None
                }
            },
            (None, None) => TokenSource::None,
        };
        let timeout = match t.get("timeout") {
            None => DEFAULT_TIMEOUT,
            Some(d) => match self
                .string(d, "`timeout`")
                .map(|s| (target::parse_duration(&s.value), s.span))
            {
                Some((Ok(d), _)) => d,
                Some((Err(why), span)) => {
                    self.error(span, "bad-timeout", format!("invalid `timeout`: {why}"));
                    ok = false;
                    DEFAULT_TIMEOUT
                }
                None => {
                    ok = false;
                    DEFAULT_TIMEOUT
                }
            },
        };
        if !ok {
            return None;
        }
        Some(Sp {
            value: LocalTarget {
                base_url: base_url?,
                api,
                models,
                fallback_model,
                token,
                timeout,
            },
            span: v.span(),
        })
    }

    /// A `[[detector]]` table: the pattern-file schema, compiled, with its examples run.
    fn custom_detector(&mut self, v: &Value<'_>, builtin_ids: &[String]) -> Option<CustomDetector> {
        let t = v.get_ref().as_table()?;
        let before = self.diags.len();
        self.keys(t, "`[[detector]]`", DETECTOR_KEYS);
        if let Some(ctx) = t.get("context")
            && let Some(ct) = self.table(ctx, "`[detector.context]`")
        {
            self.keys(ct, "`[detector.context]`", CONTEXT_KEYS);
        }
        if self.diags.len() > before {
            return None;
        }
        let spec = match DetectorSpec::deserialize(ValueDeserializer::from(v.clone())) {
            Ok(spec) => spec,
            Err(e) => {
                let span = e.span().unwrap_or_else(|| v.span());
                self.error(
                    span,
                    "wrong-type",
                    format!("in `[[detector]]`: {}", e.message().trim()),
                );
                return None;
            }
        };
        let span_of = |key: &str| t.get(key).map_or_else(|| v.span(), Spanned::span);
        let id = Sp {
            value: spec.id.clone(),
            span: span_of("id"),
        };
        let mut ok = true;
        if !is_name(&spec.id) {
            self.error(
                id.span.clone(),
                "bad-name",
                "detector ids are lowercase ASCII letters, digits, `-` and `_`",
            );
            ok = false;
        } else if builtin_ids.contains(&spec.id) || spec.id == "internal-hostname" {
            self.error(
                id.span.clone(),
                "duplicate-detector",
                format!("`{}` is a built-in detector id", spec.id),
            )
            .help =
                Some("pick another id, or `enable` the built-in one in `[detectors]`".to_string());
            ok = false;
        }
        if let Err(e) = regex::bytes::RegexBuilder::new(&spec.regex)
            .unicode(false)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
        {
            self.error(
                span_of("regex"),
                "invalid-regex",
                format!("invalid regex: {}", regex_reason(&e.to_string())),
            );
            ok = false;
        }
        if let Some(name) = &spec.validator
            && Validator::from_name(name).is_none()
        {
            self.error(
                span_of("validator"),
                "unknown-validator",
                format!("unknown validator `{name}`"),
            )
            .help = Some("see the validator list in patterns/README.md".to_string());
            ok = false;
        }
        if !(0.0..=1.0).contains(&spec.confidence) {
            self.error(
                span_of("confidence"),
                "out-of-range",
                "`confidence` must be between 0.0 and 1.0",
            );
            ok = false;
        }
        if spec.keywords.iter().any(|k| k.is_empty() || !k.is_ascii()) {
            self.error(
                span_of("keywords"),
                "invalid-detector",
                "keywords must be non-empty ASCII",
            );
            ok = false;
        }
        if !ok {
            return None;
        }
        let toml = match pattern_file_text(v) {
            Some(text) => text,
            None => {
                self.error(
                    v.span(),
                    "invalid-detector",
                    "this detector cannot be re-read as a pattern file",
                );
                return None;
            }
        };
        let scanner = Scanner::builder()
            .internal_suffixes(Vec::<String>::new())
            .only([spec.id.as_str()])
            .detectors_toml(&self.src.rel, &toml)
            .build();
        let scanner = match scanner {
            Ok(s) => s,
            Err(e) => {
                self.error(v.span(), "invalid-detector", e.to_string());
                return None;
            }
        };
        // The examples, with their positions: each must behave as it says.
        for (key, must) in [("must_match", true), ("must_not_match", false)] {
            let Some(list) = t.get(key).and_then(|l| l.get_ref().as_array()) else {
                continue;
            };
            for example in list.iter() {
                let Some(text) = example.get_ref().as_str() else {
                    continue;
                };
                let found = scanner.scan(text).iter().any(|f| f.detector() == spec.id);
                if found != must {
                    let message = if must {
                        format!(
                            "detector `{}` does not match this `must_match` example",
                            spec.id
                        )
                    } else {
                        format!(
                            "detector `{}` matches this `must_not_match` example",
                            spec.id
                        )
                    };
                    self.error(example.span(), "example-failed", message);
                    ok = false;
                }
            }
        }
        ok.then_some(CustomDetector { id, toml })
    }
}

/// A `[[detector]]` table as the text of a pattern file with that one detector.
fn pattern_file_text(v: &Value<'_>) -> Option<String> {
    let value = toml::Value::deserialize(ValueDeserializer::from(v.clone())).ok()?;
    let mut file = toml::Table::new();
    file.insert("detector".to_string(), toml::Value::Array(vec![value]));
    toml::to_string(&file).ok()
}

pub(crate) fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn show_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.map(|s| format!("{s:?}")).collect();
    if items.len() == 1 {
        items.into_iter().next().unwrap_or_default()
    } else {
        format!("[{}]", items.join(", "))
    }
}

/// regex's errors draw the pattern over several lines; the last line says what is wrong.
fn regex_reason(s: &str) -> String {
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .trim_start_matches("error: ")
        .to_string()
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        _ => e.to_string(),
    }
}

/// The known name closest to `key` by edit distance, if it is close enough to be a typo.
pub(crate) fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4) && *d < key.len().max(1))
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Reads a policy file from disk into a [`Source`].
pub(crate) fn read_source(dir: &Path, file_name: &str) -> std::io::Result<Source> {
    let path = dir.join(file_name);
    let text = std::fs::read_to_string(&path)?;
    Ok(Source {
        name: file_name.trim_end_matches(".toml").to_string(),
        rel: file_name.to_string(),
        path,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(closest("catgories", SELECTION_KEYS), Some("categories"));
        assert_eq!(closest("on_eror", TOP_KEYS), Some("on_error"));
        assert_eq!(closest("zzz", TOP_KEYS), None);
    }
}
