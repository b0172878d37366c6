//! Users and groups: `passwd::find_user`, `find_group` and `groups_of` as spawn.rs calls them
//! for `User=`, `Group=` and `SupplementaryGroups=`. Input (UTF-8 prefix): the /etc/passwd
//! text, then `\x01` and the /etc/group text, then `\x01` and names to look up, one a line;
//! every name and number of the files is looked up too.
//!
//! Invariants: a user found in the file is the first well-formed line that has that name (or
//! uid), and its name, home and shell are that line's fields (borrowed from the input); one
//! not in the file is only `root`, `nobody` or a plain number; a malformed line is reported
//! only if it has the name; a group is found likewise; `groups_of` never holds more than its
//! capacity, starts with the primary gid, has no duplicates, and lists exactly the groups
//! of well-formed lines that name the user (or says the list is full).

use crate::{Rng, borrowed_from, utf8_prefix};
use autoinit::passwd::{self, LookupError, MAX_GROUPS};

fn lines(text: &str) -> impl Iterator<Item = (u32, &str)> {
    text.split('\n').zip(1u32..).map(|(l, n)| (n, l.strip_suffix('\r').unwrap_or(l)))
}

fn id(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok().filter(|&i| i != u32::MAX && i != 65535)
}

/// The `:` fields of a line if it has exactly `N` of them.
fn fields<const N: usize>(l: &str) -> Option<[&str; N]> {
    let mut f = [""; N];
    let mut it = l.split(':');
    for slot in f.iter_mut() {
        *slot = it.next()?;
    }
    it.next().is_none().then_some(f)
}

fn skipped(l: &str) -> bool {
    l.is_empty() || l.starts_with(['#', '+', '-'])
}

/// (name, uid, gid, home, shell) of a well-formed passwd line.
fn user_line(l: &str) -> Option<UserFields<'_>> {
    let f = fields::<7>(l).filter(|f| !skipped(l) && !f[0].is_empty())?;
    Some((f[0], id(f[2])?, id(f[3])?, f[5], f[6]))
}

/// (name, gid, members) of a well-formed group line.
fn group_line(l: &str) -> Option<(&str, u32, &str)> {
    let f = fields::<4>(l).filter(|f| !skipped(l) && !f[0].is_empty())?;
    Some((f[0], id(f[2])?, f[3]))
}

/// (name, uid, gid, home, shell) of a well-formed passwd line.
type UserFields<'a> = (&'a str, u32, u32, &'a str, &'a str);
/// A group line: (name, gid, members) if well-formed, else its member list if it has one
/// and is not skipped.
type GroupFields<'a> = Result<(&'a str, u32, Vec<&'a str>), Option<Vec<&'a str>>>;

/// The files split and parsed once by the reference, shared by every query (each query
/// of an input used to split every line again: most of the time went there).
struct Model<'a> {
    /// Every passwd line (index = line number - 1) and its fields if well-formed.
    users: Vec<(&'a str, Option<UserFields<'a>>)>,
    /// Every group line: its fields if well-formed, else (if not skipped) its member list.
    groups: Vec<(&'a str, GroupFields<'a>)>,
}

impl<'a> Model<'a> {
    fn new(passwd_text: &'a str, group_text: &'a str) -> Model<'a> {
        let users = lines(passwd_text).map(|(_, l)| (l, user_line(l))).collect();
        let groups = lines(group_text)
            .map(|(_, l)| {
                let parsed = match group_line(l) {
                    Some((name, gid, members)) => Ok((name, gid, members.split(',').collect())),
                    None => Err((!skipped(l)).then(|| l.split(':').nth(3).map(|m| m.split(',').collect())).flatten()),
                };
                (l, parsed)
            })
            .collect();
        Model { users, groups }
    }

    /// The text of line `n` (1-based) of a file.
    fn line<T>(v: &[(&'a str, T)], n: u32) -> &'a str {
        n.checked_sub(1).and_then(|i| v.get(i as usize)).map(|e| e.0).expect("the reported line exists")
    }
}

/// Checks `find_user` and returns its answer.
fn check_user<'a>(m: &Model<'a>, passwd_text: &'a str, query: &'a str) -> Result<passwd::User<'a>, LookupError> {
    let numeric = !query.is_empty() && query.bytes().all(|b| b.is_ascii_digit());
    let wanted_uid = if numeric { id(query) } else { None };
    let r = passwd::find_user(passwd_text, query);
    if numeric && wanted_uid.is_none() {
        assert_eq!(r, Err(LookupError::InvalidId), "find_user {query:?}");
        return r;
    }
    let hit = |name: &str, uid: u32| if numeric { Some(uid) == wanted_uid } else { name == query };
    let first = m.users.iter().find_map(|(_, u)| u.filter(|u| hit(u.0, u.1)));
    match r {
        Ok(u) => {
            if let Some((name, uid, gid, home, shell)) = first {
                assert_eq!((u.name, u.uid, u.gid, u.home, u.shell), (name, uid, gid, home, shell), "find_user {query:?}");
                for s in [u.name, u.home, u.shell] {
                    assert!(borrowed_from(s, passwd_text), "{s:?} is not from the file");
                }
            } else {
                // Synthesized.
                let ok = matches!((query, wanted_uid), ("root", _) | ("nobody", _) | (_, Some(0 | 65534)))
                    || (numeric && u.name == query && u.uid == wanted_uid.unwrap());
                assert!(ok, "find_user {query:?} made up {u:?}");
            }
        }
        Err(LookupError::Malformed { line }) => {
            assert!(first.is_none(), "{query:?} is on a good line but a malformed one is reported");
            let l = Model::line(&m.users, line);
            assert!(user_line(l).is_none(), "line {line} is not malformed: {l:?}");
            let key = l.split(':').nth(if numeric { 2 } else { 0 });
            assert_eq!(key, Some(query), "line {line} does not have {query:?}");
        }
        Err(e) => {
            assert!(first.is_none(), "{query:?} is in the file but: {e:?}");
            assert!(!numeric && query != "root" && query != "nobody", "{query:?}: {e:?}");
        }
    }
    r
}

fn check_group(m: &Model<'_>, group_text: &str, query: &str) {
    let first = m.groups.iter().find_map(|(_, g)| g.as_ref().ok().filter(|g| g.0 == query));
    let r = passwd::find_group(group_text, query);
    if !query.is_empty() && query.bytes().all(|b| b.is_ascii_digit()) {
        assert_eq!(r, id(query).ok_or(LookupError::InvalidId), "find_group {query:?}");
        return;
    }
    match (r, first) {
        (Ok(gid), Some((_, want, _))) => assert_eq!(gid, *want, "find_group {query:?}"),
        (Ok(gid), None) => assert!(matches!((query, gid), ("root", 0) | ("nobody" | "nogroup", 65534)), "find_group {query:?} made up {gid}"),
        (Err(LookupError::Malformed { line }), None) => {
            let l = Model::line(&m.groups, line);
            assert!(group_line(l).is_none() && l.split(':').next() == Some(query), "line {line}: {l:?}");
        }
        (Err(e), _) => assert!(first.is_none() && !matches!(query, "root" | "nobody" | "nogroup"), "find_group {query:?}: {e:?}"),
    }
}

/// The reference's answer for `groups_of`: the gids in order, and the first malformed line
/// that lists the user.
fn groups_want(m: &Model<'_>, user: &str, primary: u32) -> (Vec<u32>, Option<u32>) {
    let mut want = vec![primary];
    let mut malformed = None;
    for ((_, g), n) in m.groups.iter().zip(1u32..) {
        match g {
            Ok((_, gid, members)) if members.contains(&user) && !want.contains(gid) => want.push(*gid),
            Err(Some(members)) if malformed.is_none() && members.contains(&user) => malformed = Some(n),
            _ => {}
        }
    }
    (want, malformed)
}

fn check_groups_of<const N: usize>(group_text: &str, user: &str, primary: u32, (want, malformed): &(Vec<u32>, Option<u32>)) {
    let mut out: heapless::Vec<u32, N> = heapless::Vec::new();
    let r = passwd::groups_of(group_text, user, primary, &mut out);
    assert!(out.len() <= N);
    match r {
        Ok(()) => {
            assert!(malformed.is_none(), "groups_of {user:?}: malformed line {malformed:?} not reported");
            assert_eq!(out.as_slice(), want.as_slice(), "groups_of {user:?}");
        }
        Err(LookupError::TooMany) => assert!(want.len() > N, "groups_of {user:?}: full at {} of {N}", want.len()),
        Err(LookupError::Malformed { line }) => assert_eq!(*malformed, Some(line), "groups_of {user:?}"),
        Err(e) => panic!("groups_of {user:?}: {e:?}"),
    }
    if r.is_ok() || !out.is_empty() {
        assert_eq!(out.first(), Some(&primary));
    }
}

pub fn check(data: &[u8]) {
    let text = utf8_prefix(data);
    let mut parts = text.splitn(3, '\x01');
    let passwd_text = parts.next().unwrap_or("");
    let group_text = parts.next().unwrap_or("");
    let queries = parts.next().unwrap_or("");
    let model = Model::new(passwd_text, group_text);
    // The queries, a few names and numbers of the files (picked by the input, so that
    // every line can be the one asked for), and the synthesized ones.
    let mut names: Vec<&str> = queries.split('\n').take(4).collect();
    let fields: Vec<&str> = passwd_text.split('\n').chain(group_text.split('\n')).flat_map(|l| l.split(':').take(3).step_by(2)).collect();
    let mut rng = Rng::new(data.len() as u64 ^ u64::from(data.first().copied().unwrap_or(0)) << 32);
    for _ in 0..6.min(fields.len()) {
        names.push(fields[rng.size(fields.len()) - 1]);
    }
    names.extend(["root", "nobody", "nogroup", "65535", "4294967296"]);
    names.sort();
    names.dedup();
    for q in &names {
        let primary = check_user(&model, passwd_text, q).map_or(1000, |u| u.gid);
        check_group(&model, group_text, q);
        let want = groups_want(&model, q, primary);
        check_groups_of::<MAX_GROUPS>(group_text, q, primary, &want);
        check_groups_of::<2>(group_text, q, primary, &want);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples() {
        super::check(
            b"root:x:0:0:root:/root:/bin/sh\nbad:x:1\nwww:x:33:33:w:/var/www:/usr/sbin/nologin\r\n+nis\n\x01root:x:0:\nadm:x:4:www,root\nbroken:x:y:www\nnet:x:5:www\n\x01www\n33\n12",
        );
    }
}
