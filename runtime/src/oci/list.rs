//! `list`: every container under the state root, as a table, JSON, or ids alone (`-q`).

use super::container::Status;
use super::{Context, OciError};

pub fn run(ctx: &mut Context, json: bool, quiet: bool) -> Result<i32, OciError> {
    let mut rows = Vec::new();
    for id in ctx.root.ids() {
        match ctx.root.load(&id) {
            Ok(Some(record)) => {
                let status = ctx.root.status(&record);
                rows.push((id, Some(record), status));
            }
            Ok(None) => rows.push((id, None, Status::Creating)),
            // A directory that is not a container's: not listed.
            Err(_) => {}
        }
    }
    if quiet {
        for (id, _, _) in &rows {
            println!("{id}");
        }
    } else if json {
        let states: Vec<serde_json::Value> = rows
            .iter()
            .filter_map(|(_, record, status)| {
                let record = record.as_ref()?;
                serde_json::from_str(&record.state_json(*status)).ok()
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string(&states).expect("states serialize")
        );
    } else {
        println!(
            "{:<20} {:<8} {:<8} {:<40} CREATED",
            "ID", "PID", "STATUS", "BUNDLE"
        );
        for (id, record, status) in &rows {
            let (pid, bundle, created) = match record {
                Some(r) if *status != Status::Stopped => {
                    (r.pid, r.bundle.display().to_string(), r.created.as_str())
                }
                Some(r) => (0, r.bundle.display().to_string(), r.created.as_str()),
                None => (0, String::new(), ""),
            };
            let status = status.to_string();
            println!("{id:<20} {pid:<8} {status:<8} {bundle:<40} {created}");
        }
    }
    Ok(0)
}
