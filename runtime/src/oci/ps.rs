//! `ps`: the container's processes, from its cgroup: host pids as a JSON array, or a table.

use super::{Context, OciError};

pub fn run(ctx: &mut Context, id: &str, json: bool) -> Result<i32, OciError> {
    let record = ctx.root.record(id)?;
    let mut pids: Vec<i32> = match record.cgroup() {
        Some(group) => group.pids().iter().map(|pid| pid.as_raw()).collect(),
        None => record
            .live_pidfd()
            .map(|_| vec![record.pid])
            .unwrap_or_default(),
    };
    pids.sort_unstable();
    if json {
        println!("{}", serde_json::to_string(&pids).expect("pids serialize"));
        return Ok(0);
    }
    println!("{:>8} CMD", "PID");
    for pid in pids {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd: Vec<String> = cmdline
            .split(|&b| b == 0)
            .filter(|arg| !arg.is_empty())
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect();
        println!("{pid:>8} {}", cmd.join(" "));
    }
    Ok(0)
}
