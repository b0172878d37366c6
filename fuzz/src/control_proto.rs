//! The control socket's protocol (control_proto.rs): `parse_request` (services.rs, and
//! control.rs on the client side) and `RequestBuf::feed` as the server reads a stream in
//! pieces, including the `upgrade PATH [--persist] [--settle SECS]` request; the responses'
//! `write_ok`/`write_error`/`split_response`; the `status` table writer.
//!
//! Invariants: feeding the input in random pieces gives the request `parse_request` gives
//! for the same line (or `TooLong`, or "need more" exactly when there is no `\n` yet); a
//! parsed request prints back to a line that parses to the same request; names are valid
//! unit names taken from the line; `split_response` returns the reason `write_error` wrote
//! (control bytes as spaces) and the body after `ok`; a status row is written whole or not at
//! all, never past its buffer or `ROW_BYTES`, and `main_pid_in_status` finds its pid.

use crate::{Rng, borrowed_from};
use autoinit::control_proto::{
    self as proto, Feed, LastExit, ProtoError, REQUEST_BYTES, ROW_BYTES, Request, RequestBuf, StatusRow, Status,
};
use autoinit::text::SliceWriter;

/// The request as a line that should parse to it. Names get their `.service` suffix back:
/// a name may itself end in `.service` (`status a.service.service` names `a.service`).
fn print(r: &Request<'_>) -> String {
    match r {
        Request::Status(None) => "status".into(),
        Request::Status(Some(n)) => format!("status {n}.service"),
        Request::Start(n) => format!("start {n}.service"),
        Request::Stop(n) => format!("stop {n}.service"),
        Request::Restart(n) => format!("restart {n}.service"),
        Request::Reload => "reload".into(),
        Request::Poweroff => "poweroff".into(),
        Request::Reboot => "reboot".into(),
        Request::Halt => "halt".into(),
        Request::Rollback => "rollback".into(),
        Request::Upgrade { path, persist, settle_secs } => {
            let mut s = format!("upgrade {path}");
            if *persist {
                s += " --persist";
            }
            if let Some(n) = settle_secs {
                s += &format!(" --settle {n}");
            }
            s
        }
        Request::Exec { name, command } => format!("exec {name}.service -- {}", command.as_str()),
    }
}

fn names<'a>(r: &Request<'a>) -> Option<&'a str> {
    match *r {
        Request::Status(n) => n,
        Request::Start(n) | Request::Stop(n) | Request::Restart(n) | Request::Exec { name: n, .. } => Some(n),
        _ => None,
    }
}

fn requests(data: &[u8]) {
    let whole = proto::parse_request(data);
    if let Ok(r) = &whole {
        if let Some(n) = names(r) {
            assert_eq!(proto::unit_name(&format!("{n}.service")), Ok(n), "name {n:?}");
            let text = core::str::from_utf8(data).expect("a parsed request is UTF-8");
            assert!(borrowed_from(n, text));
        }
        if let Request::Upgrade { path, .. } = r {
            assert!(path.starts_with('/') && !path.contains([' ', '\t', '\n']));
        }
        let line = print(r) + "\n";
        assert!(line.len() <= data.len() + ".service".len(), "{line:?} longer than {data:?}");
        // (The suffix may take a long `exec` line over the limit.)
        if line.len() <= REQUEST_BYTES {
            assert_eq!(proto::parse_request(line.as_bytes()), Ok(*r), "parse-print-parse {line:?}");
        }
    }
    // The same bytes, as a stream socket may deliver them.
    let mut rng = Rng::new(data.iter().fold(0xcbf29ce484222325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3)));
    let mut buf = RequestBuf::new();
    let mut fed = Feed::NeedMore;
    let mut at = 0;
    while at < data.len() && fed == Feed::NeedMore {
        let n = rng.size(data.len() - at).min(rng.size(64));
        fed = buf.feed(&data[at..at + n]);
        at += n;
    }
    let newline = data.iter().position(|&b| b == b'\n');
    match fed {
        Feed::Complete(n) => {
            assert_eq!(Some(n - 1), newline);
            assert!(n <= REQUEST_BYTES);
            assert_eq!(buf.bytes(), &data[..n]);
            let line = proto::parse_request(&data[..n]);
            assert_eq!(buf.request(), line);
            if n == data.len() {
                assert_eq!(line, whole);
            } else {
                assert_eq!(whole, Err(ProtoError::TrailingData));
            }
        }
        Feed::TooLong => {
            assert!(newline.is_none_or(|p| p >= REQUEST_BYTES));
            assert_eq!(whole, Err(ProtoError::TooLong));
        }
        Feed::NeedMore => {
            assert!(newline.is_none() && data.len() < REQUEST_BYTES);
            assert_eq!(whole, Err(if data.is_empty() { ProtoError::Empty } else { ProtoError::NoNewline }));
            assert_eq!(buf.request(), whole);
        }
    }
}

fn responses(data: &[u8]) {
    let text = crate::utf8_prefix(data);
    let mut out = [0u8; 600];
    let mut w = SliceWriter::new(&mut out);
    if proto::write_error(text, &mut w).is_ok() {
        let clean: String = text.chars().map(|c| if (c as u32) < 0x20 || c == '\x7f' { ' ' } else { c }).collect();
        let (status, body) = proto::split_response(w.written()).expect("written error parses");
        assert_eq!(status, Status::Error(clean.trim_start_matches(' ')));
        assert!(body.is_empty());
    }
    let mut out = [0u8; 600];
    let mut w = SliceWriter::new(&mut out);
    proto::write_ok(&mut w).expect("ok fits");
    let n = w.len();
    let len = (n + data.len()).min(out.len());
    out[n..len].copy_from_slice(&data[..len - n]);
    assert_eq!(proto::split_response(&out[..len]), Ok((Status::Ok, &data[..len - n])));
    // Whatever a server sends, the client never panics.
    let _ = proto::split_response(data);
}

fn status_row(data: &[u8]) {
    if data.len() < 24 {
        return;
    }
    let (nums, rest) = data.split_at(24);
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap());
    let (a, b, c) = (word(&nums[..8]), word(&nums[8..16]), word(&nums[16..24]));
    let text = crate::utf8_prefix(rest);
    let (name, state) = text.split_once(' ').unwrap_or((text, "running"));
    let row = StatusRow {
        name,
        state,
        pid: (a & 1 == 0).then_some((a >> 1) as i32),
        restarts: (a >> 33) as u32,
        uptime_ms: (b & 1 == 0).then_some(b >> 1),
        last_exit: match c % 3 {
            0 => LastExit::None,
            1 => LastExit::Code((c >> 8) as u8),
            _ => LastExit::Signal((c >> 8) as u32),
        },
    };
    let cap = (c >> 40) as usize % 400;
    let mut out = vec![0u8; cap];
    let mut w = SliceWriter::new(&mut out);
    let header = proto::write_status_header(&mut w).is_ok();
    let before = w.len();
    let r = proto::write_status_row(&row, &mut w);
    let after = w.len();
    assert!(after <= cap);
    match r {
        Ok(()) => {
            let written = &w.written()[before..];
            assert!(written.len() <= ROW_BYTES && written.ends_with(b"\n"));
            assert!(written.starts_with(name.as_bytes()));
            assert_eq!(written.iter().filter(|&&b| b == b'\n').count(), 1 + name.matches('\n').count() + state.matches('\n').count());
            let simple = proto::unit_name(name) == Ok(name) && !state.is_empty() && !state.contains(char::is_whitespace);
            // (A row may fit where the header did not.)
            if simple && header {
                let table = w.written().to_vec();
                let want = row.pid.filter(|&p| p > 0);
                assert_eq!(proto::main_pid_in_status(&table, name), want, "pid of {name} in {:?}", String::from_utf8_lossy(&table));
            }
        }
        Err(_) => assert_eq!(after, before, "a row that does not fit is written in part"),
    }
}

pub fn check(data: &[u8]) {
    requests(data);
    responses(data);
    status_row(data);
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples() {
        for s in [
            "status\n",
            "status sshd.service\n",
            "upgrade /data/new.img --persist --settle 30\r\n",
            "upgrade /x --settle 99999999999\n",
            "exec web --  sh  -c 'ls'\n",
            "restart a\nextra",
            "\tstart\tx\t\n",
        ] {
            super::check(s.as_bytes());
        }
        super::check(&[b'x'; 600]);
    }
}
