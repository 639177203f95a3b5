//! `probe facts`: gather what the process sees, from `/proc` and a few system calls.
//! Each part that fails is noted in `Facts::errors` and the rest is still gathered.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use conformance::facts::{
    CapabilitySets, Cgroup, DevNode, Facts, Mount, OpenFd, Route, Tty, DEV_ENTRIES,
};
use conformance::names::NAMESPACES;

use crate::sys;

pub fn facts() -> Facts {
    let mut errors = Vec::new();
    let mut note = |what: &str, result: io::Result<()>| {
        if let Err(e) = result {
            errors.push(format!("{what}: {e}"));
        }
    };
    let mut facts = Facts::default();

    let ids = sys::ids();
    (facts.pid, facts.ppid, facts.uid, facts.gid) = (ids.pid, ids.ppid, ids.uid, ids.gid);
    facts.environment = std::env::vars_os()
        .map(|(key, value)| format!("{}={}", key.to_string_lossy(), value.to_string_lossy()))
        .collect();
    note("hostname", sys::hostname().map(|h| facts.hostname = h));
    note(
        "cwd",
        std::env::current_dir().map(|cwd| facts.cwd = cwd.to_string_lossy().into_owned()),
    );
    note(
        "capabilities",
        capabilities().map(|c| facts.capabilities = c),
    );
    facts.namespaces = namespaces();
    note("mounts", mounts().map(|m| facts.mounts = m));
    facts.devices = devices();
    note(
        "interfaces",
        sys::interfaces().map(|i| facts.interfaces = i),
    );
    note("routes", routes().map(|r| facts.routes = r));
    note("cgroup", cgroup().map(|c| facts.cgroup = c));
    note("fds", fds().map(|f| facts.fds = f));
    facts.tty = tty();
    note("root", root_entries().map(|r| facts.root_entries = r));

    facts.errors = errors;
    facts
}

fn capabilities() -> io::Result<CapabilitySets> {
    let status = fs::read_to_string("/proc/self/status")?;
    CapabilitySets::from_status(&status).map_err(io::Error::other)
}

/// Namespace link targets; a namespace that cannot be read maps to the error text.
fn namespaces() -> BTreeMap<String, String> {
    NAMESPACES
        .iter()
        .map(|(name, _)| {
            let target = fs::read_link(format!("/proc/self/ns/{name}"))
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_else(|e| format!("unreadable: {e}"));
            (name.to_string(), target)
        })
        .collect()
}

fn mounts() -> io::Result<Vec<Mount>> {
    Ok(Mount::parse_mountinfo(&fs::read_to_string(
        "/proc/self/mountinfo",
    )?))
}

fn devices() -> BTreeMap<String, DevNode> {
    DEV_ENTRIES
        .iter()
        .map(|name| (name.to_string(), dev_node(&Path::new("/dev").join(name))))
        .collect()
}

fn dev_node(path: &Path) -> DevNode {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return DevNode {
            kind: "missing".to_string(),
            ..DevNode::default()
        };
    };
    let kind = meta.file_type();
    let kind_name = if kind.is_char_device() {
        "char"
    } else if kind.is_block_device() {
        "block"
    } else if kind.is_dir() {
        "dir"
    } else if kind.is_symlink() {
        "symlink"
    } else if kind.is_fifo() {
        "fifo"
    } else if kind.is_socket() {
        "socket"
    } else {
        "file"
    };
    let rdev = meta.rdev();
    DevNode {
        kind: kind_name.to_string(),
        major: ((rdev >> 8) & 0xfff) as u32 | ((rdev >> 32) & !0xfff) as u32,
        minor: (rdev & 0xff) as u32 | ((rdev >> 12) & !0xff) as u32,
        mode: meta.mode() & 0o7777,
        target: fs::read_link(path)
            .ok()
            .map(|t| t.to_string_lossy().into_owned()),
    }
}

fn routes() -> io::Result<Vec<Route>> {
    let text = fs::read_to_string("/proc/net/route")?;
    Ok(text.lines().skip(1).filter_map(parse_route_line).collect())
}

/// `eth0 0000A8C0 00000000 0001 0 0 0 00FFFFFF 0 0 0`: addresses are hex in host byte order.
fn parse_route_line(line: &str) -> Option<Route> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let address = |hex: &str| -> Option<Ipv4Addr> {
        let raw = u32::from_str_radix(hex, 16).ok()?;
        Some(Ipv4Addr::from(raw.to_le_bytes()))
    };
    Some(Route {
        iface: fields.first()?.to_string(),
        destination: address(fields.get(1)?)?.to_string(),
        gateway: address(fields.get(2)?)?.to_string(),
        flags: u32::from_str_radix(fields.get(3)?, 16).ok()?,
        prefix: u32::from(address(fields.get(7)?)?).count_ones(),
    })
}

fn cgroup() -> io::Result<Cgroup> {
    let lines: Vec<String> = fs::read_to_string("/proc/self/cgroup")?
        .lines()
        .map(str::to_string)
        .collect();
    let mut candidates = Vec::new();
    for line in &lines {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next(), parts.next().unwrap_or("/"));
        match controllers {
            Some("") => {
                candidates.push(format!("/sys/fs/cgroup{path}/memory.max"));
                candidates.push("/sys/fs/cgroup/memory.max".to_string());
            }
            Some(list) if list.split(',').any(|c| c == "memory") => {
                candidates.push(format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"));
                candidates.push("/sys/fs/cgroup/memory/memory.limit_in_bytes".to_string());
            }
            _ => {}
        }
    }
    let found = candidates
        .into_iter()
        .find_map(|file| Some((fs::read_to_string(&file).ok()?, file)));
    Ok(Cgroup {
        lines,
        memory_limit: found.as_ref().map(|(value, _)| value.trim().to_string()),
        memory_limit_file: found.map(|(_, file)| file),
    })
}

fn fds() -> io::Result<Vec<OpenFd>> {
    Ok(sys::open_fds()?
        .into_iter()
        .map(|fd| OpenFd {
            fd,
            target: fs::read_link(format!("/proc/self/fd/{fd}"))
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_else(|e| format!("unreadable: {e}")),
        })
        .collect())
}

fn tty() -> Tty {
    let state = sys::tty_state();
    Tty {
        isatty: state.isatty,
        ttyname: state.isatty[0]
            .then(|| fs::read_link("/proc/self/fd/0").ok())
            .flatten()
            .map(|t| t.to_string_lossy().into_owned()),
        foreground_pgrp: state.foreground_pgrp,
        pgrp: state.pgrp,
        session: state.session,
    }
}

fn root_entries() -> io::Result<Vec<String>> {
    let mut names = fs::read_dir("/")?
        .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<io::Result<Vec<_>>>()?;
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_lines_decode_to_dotted_quads_and_prefixes() {
        let line = "eth0\t00000000\t012A11AC\t0003\t0\t0\t0\t00000000\t0\t0\t0";
        let route = parse_route_line(line).unwrap();
        assert_eq!(route.destination, "0.0.0.0");
        assert_eq!(route.gateway, "172.17.42.1");
        assert_eq!(route.prefix, 0);
        let line = "eth0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0";
        assert_eq!(parse_route_line(line).unwrap().prefix, 16);
    }
}
