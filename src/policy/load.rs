//! Loading a policy directory: read every file, resolve `extends`, check the teams as a
//! whole, compile their scanners. Every problem is collected; nothing stops at the first.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::scan::{ScannerBuilder, builtin_detectors};

use super::decide::{Action, PolicyId, Rule, Rules};
use super::diagnostic::{Diagnostic, Diagnostics};
use super::file::{self, PolicyFile, Source, Sp};
use super::set::{Allowlist, DEFAULT_TEAM, PolicySet, TeamPolicy};

pub(crate) fn load_dir(dir: &Path) -> Result<PolicySet, Diagnostics> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Diagnostics::new(vec![Diagnostic::file(
            dir,
            "io",
            format!("cannot read the policy directory: {e}"),
        )])
    })?;
    let mut names = Vec::new();
    let mut diags = Vec::new();
    for entry in entries {
        match entry {
            Ok(e) => {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".toml") && e.file_type().is_ok_and(|t| t.is_file()) {
                    names.push(name);
                }
            }
            Err(e) => diags.push(Diagnostic::file(
                dir,
                "io",
                format!("cannot list the policy directory: {e}"),
            )),
        }
    }
    names.sort();
    let mut sources = Vec::new();
    for name in names {
        match file::read_source(dir, &name) {
            Ok(s) => sources.push(s),
            Err(e) => diags.push(Diagnostic::file(
                &dir.join(&name),
                "io",
                format!("cannot read: {e}"),
            )),
        }
    }
    build(dir, sources, diags)
}

pub(crate) fn from_sources(sources: Vec<(String, String)>) -> Result<PolicySet, Diagnostics> {
    let mut sources: Vec<Source> = sources
        .into_iter()
        .map(|(rel, text)| Source {
            name: rel.trim_end_matches(".toml").to_string(),
            path: PathBuf::from(&rel),
            rel,
            text,
        })
        .collect();
    sources.sort_by(|a, b| a.rel.cmp(&b.rel));
    build(Path::new("."), sources, Vec::new())
}

/// A parsed file and what is known about it.
struct Loaded {
    src: Source,
    file: PolicyFile,
    /// Its own text had no syntax errors.
    sound: bool,
    /// Its own text had no problems at all. A team whose chain has a problem is checked
    /// but not compiled: compiling would only repeat the problem in other words.
    clean: bool,
}

fn build(
    dir: &Path,
    sources: Vec<Source>,
    mut diags: Vec<Diagnostic>,
) -> Result<PolicySet, Diagnostics> {
    let builtin_ids: Vec<String> = match builtin_detectors() {
        Ok(list) => list.iter().map(|d| d.id().to_string()).collect(),
        Err(e) => {
            diags.push(Diagnostic::file(
                dir,
                "builtin",
                format!("the built-in detectors do not compile: {e}"),
            ));
            return Err(Diagnostics::new(diags));
        }
    };
    let mut files = Vec::new();
    let mut by_name = HashMap::new();
    for src in sources {
        let before = diags.len();
        let file = file::parse(&src, &builtin_ids, &mut diags);
        let sound = !diags[before..].iter().any(|d| d.code == "syntax");
        let clean = diags.len() == before;
        by_name.insert(src.name.clone(), files.len());
        files.push(Loaded {
            src,
            file,
            sound,
            clean,
        });
    }

    let mut teams: BTreeMap<String, TeamPolicy> = BTreeMap::new();
    let mut team_files: HashMap<String, usize> = HashMap::new();
    for i in 0..files.len() {
        // A team is registered even when its chain is broken, so that a broken `default`
        // is not also reported as missing.
        let team = files[i].file.team.clone();
        let mut duplicate = false;
        if let Some(team) = &team {
            if let Some(&first) = team_files.get(&team.value) {
                duplicate = true;
                diags.push(Diagnostic::at(
                    &files[i].src.path,
                    &files[i].src.text,
                    team.span.clone(),
                    "duplicate-team",
                    format!(
                        "team `{}` is already defined in {}",
                        team.value, files[first].src.rel
                    ),
                ));
            } else {
                team_files.insert(team.value.clone(), i);
            }
        }
        let Some(chain) = chain(&files, &by_name, i, &mut diags) else {
            continue;
        };
        let policy = resolve(&files, &chain, &builtin_ids, team.is_some(), &mut diags);
        if let (Some(team), Some(policy), false) = (team, policy, duplicate) {
            teams.insert(team.value, policy);
        }
    }
    // A file with syntax errors may be the one that defines `default`: saying it is
    // missing would send the reader looking in the wrong place.
    if !team_files.contains_key(DEFAULT_TEAM) && files.iter().all(|f| f.sound) {
        diags.push(
            Diagnostic::file(
                dir,
                "no-default-team",
                "the policy set has no `default` team",
            )
            .help(
                "add a policy with `team = \"default\"`: it applies to requests from unknown teams",
            ),
        );
    }
    if !diags.is_empty() {
        return Err(Diagnostics::new(diags));
    }
    let mut digest = Sha256::new();
    for (name, t) in &teams {
        digest.update(name.as_bytes());
        digest.update([0]);
        digest.update(t.id().content_hash().as_bytes());
        digest.update([0]);
    }
    Ok(PolicySet {
        teams,
        digest: format!("sha256:{}", hex(&digest.finalize())),
    })
}

/// The files `i` extends, root first, ending with `i`; `None` when the chain is broken
/// (the problem is reported at the file that holds the broken `extends`).
fn chain(
    files: &[Loaded],
    by_name: &HashMap<String, usize>,
    i: usize,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<usize>> {
    let mut seen = vec![i];
    let mut cur = i;
    while let Some(ext) = &files[cur].file.extends {
        if !files[cur].sound {
            return None;
        }
        let Some(&next) = by_name.get(&ext.value) else {
            let d = Diagnostic::at(
                &files[cur].src.path,
                &files[cur].src.text,
                ext.span.clone(),
                "unknown-base",
                format!("there is no policy file `{}.toml` to extend", ext.value),
            );
            diags.push(d);
            return None;
        };
        if let Some(pos) = seen.iter().position(|&s| s == next) {
            // Report the cycle once per member, at its own `extends`, only from the walk
            // that starts at that member.
            if pos == 0 {
                let names: Vec<&str> = seen
                    .iter()
                    .chain(std::iter::once(&next))
                    .map(|&s| files[s].src.name.as_str())
                    .collect();
                let own = files[i].file.extends.as_ref().expect("i extends something");
                diags.push(Diagnostic::at(
                    &files[i].src.path,
                    &files[i].src.text,
                    own.span.clone(),
                    "extends-cycle",
                    format!("`extends` forms a cycle: {}", names.join(" -> ")),
                ));
            }
            return None;
        }
        seen.push(next);
        cur = next;
    }
    if !files[cur].sound {
        return None;
    }
    seen.reverse();
    Some(seen)
}

/// Where a problem found while merging is written.
struct At<'a> {
    files: &'a [Loaded],
}

impl At<'_> {
    fn diag(
        &self,
        file: usize,
        span: Range<usize>,
        code: &'static str,
        message: String,
    ) -> Diagnostic {
        let f = &self.files[file];
        Diagnostic::at(&f.src.path, &f.src.text, span, code, message)
    }
}

/// Merges a chain of files (root first) into one team policy and checks it as a whole.
/// Files that are not teams are checked the same way, but nothing is built for them.
fn resolve(
    files: &[Loaded],
    chain: &[usize],
    builtin_ids: &[String],
    is_team: bool,
    diags: &mut Vec<Diagnostic>,
) -> Option<TeamPolicy> {
    let at = At { files };
    let before = diags.len();
    let leaf = &files[*chain.last().expect("a chain holds its own file")];

    // Ids a selection or rule may name: built-ins, the chain's own detectors and
    // dictionaries.
    let mut known: Vec<String> = builtin_ids.to_vec();
    known.push("internal-hostname".to_string());
    let mut dictionaries: Vec<&str> = Vec::new();
    let mut defined: HashMap<&str, usize> = HashMap::new();
    for &f in chain {
        known.extend(files[f].file.declared.iter().cloned());
        dictionaries.extend(
            files[f]
                .file
                .dictionaries
                .iter()
                .map(|d| d.name.value.as_str()),
        );
        let names = files[f]
            .file
            .custom
            .iter()
            .map(|d| &d.id)
            .chain(files[f].file.dictionaries.iter().map(|d| &d.name));
        for id in names {
            if let Some(&first) = defined.get(id.value.as_str()) {
                let message = format!(
                    "`{}` is already defined as a detector or dictionary in {}",
                    id.value, files[first].src.rel
                );
                diags.push(at.diag(f, id.span.clone(), "duplicate-detector", message));
            } else if builtin_ids.contains(&id.value) {
                let message = format!("`{}` is a built-in detector id", id.value);
                diags.push(at.diag(f, id.span.clone(), "duplicate-detector", message));
            } else {
                defined.insert(&id.value, f);
                known.push(id.value.clone());
            }
        }
    }
    // `selecting`: named in `enable` / `disable`, where dictionaries have no place (they
    // always run).
    let check_id = |f: usize, id: &Sp<String>, selecting: bool, diags: &mut Vec<Diagnostic>| {
        if selecting && dictionaries.contains(&id.value.as_str()) {
            let message = format!("`{}` is a dictionary, not a detector", id.value);
            diags.push(
                at.diag(f, id.span.clone(), "unknown-detector", message)
                    .help(
                        "dictionaries always run; remove the `[[dictionaries]]` entry to stop it",
                    ),
            );
        } else if !known.contains(&id.value) {
            let mut d = at.diag(
                f,
                id.span.clone(),
                "unknown-detector",
                format!("unknown detector `{}`", id.value),
            );
            let refs: Vec<&str> = known.iter().map(String::as_str).collect();
            if let Some(s) = file::closest(&id.value, &refs) {
                d = d.help(format!("did you mean `{s}`?"));
            }
            diags.push(d);
        }
    };

    // Selection: later files override earlier ones; enable/disable apply in order.
    let mut categories = None;
    let mut min_confidence = None;
    let mut suffixes = None;
    let mut all_builtin = None;
    let mut toggles: BTreeMap<String, bool> = BTreeMap::new();
    let mut rules = Vec::new();
    let mut allow = Vec::new();
    let mut default = None;
    let mut on_error = None;
    let mut on_unscannable = None;
    let mut local = None;
    for &f in chain {
        let file = &files[f].file;
        let sel = &file.selection;
        categories = sel.categories.clone().or(categories);
        min_confidence = sel.min_confidence.or(min_confidence);
        suffixes = sel.internal_suffixes.clone().or(suffixes);
        all_builtin = sel.all_builtin.or(all_builtin);
        for (list, on) in [(&sel.enable, true), (&sel.disable, false)] {
            for id in list {
                check_id(f, id, true, diags);
                toggles.insert(id.value.clone(), on);
            }
        }
        for r in &file.rules {
            for id in &r.detectors {
                check_id(f, id, false, diags);
            }
        }
        rules.extend(file.rules.iter().map(|r| (f, r)));
        allow.extend(file.allow.iter());
        default = file.default.as_ref().map(|a| (f, a)).or(default);
        on_error = file.on_error.as_ref().map(|a| (f, a)).or(on_error);
        on_unscannable = file
            .on_unscannable
            .as_ref()
            .map(|a| (f, a))
            .or(on_unscannable);
        local = file.local.as_ref().map(|l| (f, l)).or(local);
    }

    if !is_team {
        return None;
    }
    let team = leaf.file.team.as_ref().expect("teams have a name");
    // `route_local` needs somewhere to route to.
    if local.is_none() && !chain.iter().any(|&f| files[f].file.local_written) {
        let mut uses: Vec<(usize, &Sp<Action>)> =
            rules.iter().map(|(f, r)| (*f, &r.action)).collect();
        uses.extend(default.into_iter().chain(on_error).chain(on_unscannable));
        for (f, action) in uses {
            if action.value == Action::RouteLocal {
                let message = format!(
                    "team `{}` routes locally here but no file in its chain has a `[local]` target",
                    team.value
                );
                diags.push(
                    at.diag(f, action.span.clone(), "no-local-target", message)
                        .help("add a `[local]` table with `base_url` to the team's policy or its base"),
                );
            }
        }
    }
    if diags.len() > before || chain.iter().any(|&f| !files[f].clean) {
        return None;
    }

    let mut builder = ScannerBuilder::new();
    if let Some(c) = categories {
        builder = builder.categories(c);
    }
    if let Some(m) = min_confidence {
        builder = builder.min_confidence(m);
    }
    if let Some(s) = suffixes {
        builder = builder.internal_suffixes(s);
    }
    builder = builder.all_builtin(all_builtin.unwrap_or(false));
    for (id, on) in &toggles {
        builder = if *on {
            builder.enable(id)
        } else {
            builder.disable(id)
        };
    }
    let mut hash = Sha256::new();
    for &f in chain {
        let src = &files[f].src;
        hash_part(&mut hash, "policy", &src.rel, src.text.as_bytes());
        for d in &files[f].file.dictionaries {
            builder = builder.dictionary(d.dictionary.clone());
            hash_part(&mut hash, "dictionary", &d.rel, &d.bytes);
        }
        for c in &files[f].file.custom {
            builder = builder.detectors_toml(&src.rel, &c.toml);
        }
    }
    let scanner = match builder.build() {
        Ok(s) => s,
        Err(e) => {
            let message = format!("team `{}`: the scanner cannot be built: {e}", team.value);
            diags.push(Diagnostic::at(
                &leaf.src.path,
                &leaf.src.text,
                team.span.clone(),
                "build-failed",
                message,
            ));
            return None;
        }
    };
    let target = local.map(|(_, l)| Arc::new(l.value.clone()));
    let fallback = if target.is_some() {
        Action::RouteLocal
    } else {
        Action::Block
    };
    let id = PolicyId {
        team: Arc::from(team.value.as_str()),
        file: Arc::from(leaf.src.rel.as_str()),
        hash: Arc::from(format!("sha256:{}", hex(&hash.finalize()))),
    };
    let rules = rules
        .into_iter()
        .map(|(f, r)| Rule {
            categories: r.categories.clone(),
            detectors: r
                .detectors
                .iter()
                .map(|d| Arc::from(d.value.as_str()))
                .collect(),
            min_count: r.min_count,
            action: r.action.value,
            origin: Arc::from(format!("{}:{}", files[f].src.rel, r.line)),
            condition: Arc::from(r.condition.as_str()),
        })
        .collect();
    Some(TeamPolicy {
        scanner,
        allow: Allowlist::new(allow),
        rules: Rules {
            rules,
            default: default.map_or(Action::Allow, |(_, a)| a.value),
            on_error: on_error.map_or(fallback, |(_, a)| a.value),
            on_unscannable: on_unscannable.map_or(fallback, |(_, a)| a.value),
            target,
            id,
        },
    })
}

/// Length-prefixed, so that moving bytes from one file to the next changes the hash.
fn hash_part(hash: &mut Sha256, kind: &str, name: &str, bytes: &[u8]) {
    hash.update(kind.as_bytes());
    hash.update([0]);
    hash.update(name.as_bytes());
    hash.update([0]);
    hash.update((bytes.len() as u64).to_le_bytes());
    hash.update(bytes);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
