//! User and group lookups in the root's `/etc/passwd` and `/etc/group` text, as the files
//! backend of glibc's NSS does it, with no NSS (pure, host-tested).
//!
//! Lines are `name:password:uid:gid:gecos:home:shell` and `name:password:gid:member,member`.
//! Malformed lines (wrong field count, bad number) are skipped like glibc skips them, but a
//! lookup whose name or number is on such a line, and on no good line, reports that line, so
//! that "user not found" never hides a typo in the file. Empty lines, `#` comments and NIS
//! `+`/`-` lines are skipped silently.

use crate::text::parse_u32;

/// A sensible capacity for [`groups_of`]'s output (the kernel allows 65536, a service rarely
/// needs more than a handful).
pub const MAX_GROUPS: usize = 32;

/// One `/etc/passwd` entry.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct User<'a> {
    pub name: &'a str,
    pub uid: u32,
    pub gid: u32,
    pub home: &'a str,
    pub shell: &'a str,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum LookupError {
    /// No entry has that name or number.
    NotFound,
    /// The name or number is only on this malformed line (1-based).
    Malformed { line: u32 },
    /// The output list of [`groups_of`] is full.
    TooMany,
    /// A number that is not a valid id: -1 (4294967295) and 65535 mean "no id" to the kernel
    /// and to old 16-bit interfaces; systemd refuses them too.
    InvalidId,
}

impl LookupError {
    pub fn message(&self) -> &'static str {
        match self {
            LookupError::NotFound => "no such entry",
            LookupError::Malformed { .. } => "the entry is on a malformed line",
            LookupError::TooMany => "member of too many groups",
            LookupError::InvalidId => "invalid numeric id (65535 and 4294967295 are reserved)",
        }
    }
}

/// The id in a decimal string, or `None` if the string is not a number (then it is a name).
fn numeric_id(s: &str) -> Option<Result<u32, LookupError>> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(match parse_u32(s.as_bytes()) {
        Some(id) if id != u32::MAX && id != 65535 => Ok(id),
        _ => Err(LookupError::InvalidId),
    })
}

fn valid_id(field: &str) -> Option<u32> {
    match numeric_id(field) {
        Some(Ok(id)) => Some(id),
        _ => None,
    }
}

/// The lines worth looking at, with their 1-based numbers.
fn entries(text: &str) -> impl Iterator<Item = (u32, &str)> {
    text.split('\n').zip(1u32..).filter_map(|(line, n)| {
        let line = line.strip_suffix('\r').unwrap_or(line);
        match line.bytes().next() {
            None | Some(b'#' | b'+' | b'-') => None,
            Some(_) => Some((n, line)),
        }
    })
}

fn field(line: &str, i: usize) -> Option<&str> {
    line.split(':').nth(i)
}

fn parse_user(line: &str) -> Option<User<'_>> {
    let mut f = line.split(':');
    let name = f.next()?;
    let _password = f.next()?;
    let uid = valid_id(f.next()?)?;
    let gid = valid_id(f.next()?)?;
    let _gecos = f.next()?;
    let home = f.next()?;
    let shell = f.next()?;
    if f.next().is_some() || name.is_empty() {
        return None;
    }
    Some(User { name, uid, gid, home, shell })
}

/// Finds a user by name, or by uid when `name_or_uid` is a decimal number.
///
/// When no line has it, `root` and `nobody` (and their uids 0 and 65534) are synthesized as
/// systemd does, so that a root without /etc/passwd still runs services; a numeric uid is
/// accepted as it is: `User { name: name_or_uid, uid, gid: uid, home: "/", shell: "" }`
/// (systemd too runs `User=1234` with no passwd entry).
pub fn find_user<'a>(passwd: &'a str, name_or_uid: &'a str) -> Result<User<'a>, LookupError> {
    let wanted = numeric_id(name_or_uid).transpose()?;
    let mut malformed = None;
    for (n, line) in entries(passwd) {
        match parse_user(line) {
            Some(user) => {
                let hit = match wanted {
                    Some(uid) => user.uid == uid,
                    None => user.name == name_or_uid,
                };
                if hit {
                    return Ok(user);
                }
            }
            None => {
                let key = if wanted.is_some() { field(line, 2) } else { field(line, 0) };
                if key == Some(name_or_uid) && malformed.is_none() {
                    malformed = Some(n);
                }
            }
        }
    }
    if let Some(line) = malformed {
        return Err(LookupError::Malformed { line });
    }
    match (wanted, name_or_uid) {
        (Some(0), _) | (None, "root") => {
            Ok(User { name: "root", uid: 0, gid: 0, home: "/root", shell: "/bin/sh" })
        }
        (Some(65534), _) | (None, "nobody") => {
            Ok(User { name: "nobody", uid: 65534, gid: 65534, home: "/", shell: "" })
        }
        (Some(uid), _) => Ok(User { name: name_or_uid, uid, gid: uid, home: "/", shell: "" }),
        (None, _) => Err(LookupError::NotFound),
    }
}

/// A well-formed group line: name, gid and the member list.
fn parse_group(line: &str) -> Option<(&str, u32, &str)> {
    let mut f = line.split(':');
    let name = f.next()?;
    let _password = f.next()?;
    let gid = valid_id(f.next()?)?;
    let members = f.next()?;
    if f.next().is_some() || name.is_empty() {
        return None;
    }
    Some((name, gid, members))
}

fn lists(members: &str, user: &str) -> bool {
    members.split(',').any(|m| m == user)
}

/// Finds a group's gid by name, or checks a decimal gid (which needs no entry, as in systemd).
/// `root` (0) and `nobody`/`nogroup` (65534) are synthesized when no line has them.
pub fn find_group(group: &str, name_or_gid: &str) -> Result<u32, LookupError> {
    if let Some(gid) = numeric_id(name_or_gid) {
        return gid;
    }
    let mut malformed = None;
    for (n, line) in entries(group) {
        match parse_group(line) {
            Some((name, gid, _)) if name == name_or_gid => return Ok(gid),
            Some(_) => {}
            None => {
                if field(line, 0) == Some(name_or_gid) && malformed.is_none() {
                    malformed = Some(n);
                }
            }
        }
    }
    match (malformed, name_or_gid) {
        (Some(line), _) => Err(LookupError::Malformed { line }),
        (None, "root") => Ok(0),
        (None, "nobody" | "nogroup") => Ok(65534),
        (None, _) => Err(LookupError::NotFound),
    }
}

/// The groups a process of `user_name` gets, like initgroups(3): `primary_gid` first, then
/// every group whose member list names the user, each gid once. A malformed line that lists
/// the user is an error, so a group is never silently missing.
pub fn groups_of<const N: usize>(
    group: &str,
    user_name: &str,
    primary_gid: u32,
    out: &mut heapless::Vec<u32, N>,
) -> Result<(), LookupError> {
    out.clear();
    out.push(primary_gid).map_err(|_| LookupError::TooMany)?;
    for (n, line) in entries(group) {
        match parse_group(line) {
            Some((_, gid, members)) => {
                if lists(members, user_name) && !out.contains(&gid) {
                    out.push(gid).map_err(|_| LookupError::TooMany)?;
                }
            }
            None => {
                if field(line, 3).is_some_and(|m| lists(m, user_name)) {
                    return Err(LookupError::Malformed { line: n });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/ash\n\
        # a comment\n\
        \n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        broken:x:12:oops:gecos:/home/broken:/bin/sh\n\
        short:x:13:13\n\
        www:x:33:33:www-data:/var/www:/usr/sbin/nologin\r\n\
        +nis::::::\n\
        dup:x:40:40::/first:/bin/sh\n\
        dup:x:41:41::/second:/bin/sh\n\
        fixed:x:bad:1::/:\n\
        fixed:x:50:50::/fixed:/bin/sh\n\
        bigid:x:4294967295:1::/:\n";

    #[test]
    fn finds_users_by_name_and_uid() {
        let u = find_user(PASSWD, "daemon").unwrap();
        assert_eq!(
            u,
            User { name: "daemon", uid: 1, gid: 1, home: "/usr/sbin", shell: "/usr/sbin/nologin" }
        );
        assert_eq!(find_user(PASSWD, "root").unwrap().shell, "/bin/ash");
        assert_eq!(find_user(PASSWD, "33").unwrap().name, "www");
        // A CRLF line loses its \r.
        assert_eq!(find_user(PASSWD, "www").unwrap().shell, "/usr/sbin/nologin");
        // The first of duplicate entries wins, as in glibc.
        assert_eq!(find_user(PASSWD, "dup").unwrap().home, "/first");
        assert_eq!(find_user(PASSWD, "41").unwrap().home, "/second");
        // A good line after a malformed one with the same name is found.
        assert_eq!(find_user(PASSWD, "fixed").unwrap().uid, 50);
    }

    #[test]
    fn malformed_lines_are_reported_only_for_their_name() {
        assert_eq!(find_user(PASSWD, "broken"), Err(LookupError::Malformed { line: 5 }));
        assert_eq!(find_user(PASSWD, "short"), Err(LookupError::Malformed { line: 6 }));
        assert_eq!(find_user(PASSWD, "12"), Err(LookupError::Malformed { line: 5 }));
        // An invalid uid makes its line malformed.
        assert_eq!(find_user(PASSWD, "bigid"), Err(LookupError::Malformed { line: 13 }));
        assert_eq!(find_user(PASSWD, "nosuch"), Err(LookupError::NotFound));
        assert_eq!(find_user(PASSWD, "nis"), Err(LookupError::NotFound));
        assert_eq!(find_user(PASSWD, "+nis"), Err(LookupError::NotFound));
        assert_eq!(find_user(PASSWD, ""), Err(LookupError::NotFound));
    }

    #[test]
    fn unknown_numeric_uid_and_synthesized_users() {
        assert_eq!(
            find_user(PASSWD, "1234").unwrap(),
            User { name: "1234", uid: 1234, gid: 1234, home: "/", shell: "" }
        );
        assert_eq!(find_user("", "root").unwrap().home, "/root");
        assert_eq!(find_user("", "0").unwrap().name, "root");
        assert_eq!(find_user("", "nobody").unwrap().uid, 65534);
        assert_eq!(find_user("", "65534").unwrap().name, "nobody");
        assert_eq!(find_user("", "65535"), Err(LookupError::InvalidId));
        assert_eq!(find_user("", "4294967295"), Err(LookupError::InvalidId));
        assert_eq!(find_user("", "99999999999"), Err(LookupError::InvalidId));
        // "-1" and "+1" are names, not numbers; no such name exists.
        assert_eq!(find_user("", "-1"), Err(LookupError::NotFound));
        assert_eq!(find_user("", "+1"), Err(LookupError::NotFound));
    }

    const GROUP: &str = "root:x:0:\n\
        wheel:x:10:alice,bob\n\
        audio:x:29:bob\n\
        video:x:44:carol,bob\n\
        # staff:x:50:bob\n\
        bad:x:nan:dave\n\
        again:x:10:bob\n\
        plain:x:100:\n\
        toolong:x:101:bob:extra\n";

    #[test]
    fn finds_groups() {
        assert_eq!(find_group(GROUP, "wheel"), Ok(10));
        assert_eq!(find_group(GROUP, "plain"), Ok(100));
        assert_eq!(find_group(GROUP, "777"), Ok(777));
        assert_eq!(find_group(GROUP, "65535"), Err(LookupError::InvalidId));
        assert_eq!(find_group(GROUP, "staff"), Err(LookupError::NotFound));
        assert_eq!(find_group(GROUP, "bad"), Err(LookupError::Malformed { line: 6 }));
        assert_eq!(find_group(GROUP, "toolong"), Err(LookupError::Malformed { line: 9 }));
        assert_eq!(find_group("", "root"), Ok(0));
        assert_eq!(find_group("", "nogroup"), Ok(65534));
        assert_eq!(find_group("", "users"), Err(LookupError::NotFound));
    }

    #[test]
    fn groups_of_lists_primary_then_memberships_once() {
        let mut out: heapless::Vec<u32, 8> = heapless::Vec::new();
        groups_of(GROUP, "alice", 1000, &mut out).unwrap();
        assert_eq!(&out[..], &[1000, 10]);
        // bob is listed in a malformed line too (toolong), which is an error...
        assert_eq!(
            groups_of(GROUP, "bob", 1001, &mut out),
            Err(LookupError::Malformed { line: 9 })
        );
        // ...but not once that line is gone; gid 10 comes once although two lines list it.
        let fixed = GROUP.replace("toolong:x:101:bob:extra\n", "");
        groups_of(&fixed, "bob", 1001, &mut out).unwrap();
        assert_eq!(&out[..], &[1001, 10, 29, 44]);
        // A primary gid that is also a listed group comes once.
        groups_of(&fixed, "bob", 29, &mut out).unwrap();
        assert_eq!(&out[..], &[29, 10, 44]);
        // dave is only on the malformed line with a bad gid.
        assert_eq!(groups_of(GROUP, "dave", 5, &mut out), Err(LookupError::Malformed { line: 6 }));
        groups_of(GROUP, "nobody-here", 5, &mut out).unwrap();
        assert_eq!(&out[..], &[5]);
        // A substring of a member is no member.
        groups_of(&fixed, "bo", 5, &mut out).unwrap();
        assert_eq!(&out[..], &[5]);
    }

    #[test]
    fn groups_of_reports_a_full_list() {
        let fixed = GROUP.replace("toolong:x:101:bob:extra\n", "");
        let mut out: heapless::Vec<u32, 3> = heapless::Vec::new();
        assert_eq!(groups_of(&fixed, "bob", 1001, &mut out), Err(LookupError::TooMany));
        let mut none: heapless::Vec<u32, 0> = heapless::Vec::new();
        assert_eq!(groups_of(&fixed, "x", 1, &mut none), Err(LookupError::TooMany));
    }

    #[test]
    fn every_error_has_a_message() {
        for e in [
            LookupError::NotFound,
            LookupError::Malformed { line: 1 },
            LookupError::TooMany,
            LookupError::InvalidId,
        ] {
            assert!(!e.message().is_empty());
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut out: heapless::Vec<u32, 4> = heapless::Vec::new();
        for _ in 0..2000 {
            let len = (seed % 64) as usize;
            let mut s = String::new();
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                s.push(b":,\n\r#+-0129ab\x00"[(seed % 14) as usize] as char);
            }
            let _ = find_user(&s, "a");
            let _ = find_user(&s, "1");
            let _ = find_group(&s, "b");
            let _ = groups_of(&s, "a", 0, &mut out);
        }
    }
}
