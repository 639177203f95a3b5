//! Kubernetes' CRI (`runtime.v1.RuntimeService`) as kubelet calls it, for the calls the
//! harness makes: the messages are written by hand from `api.proto` (field numbers below) and
//! sent by a small unary gRPC client. Debian 12 has no crictl; why not the `k8s-cri` crate is
//! in ARCHITECTURE.md (Decisions).

mod client;
pub mod proto;

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use client::Client;
use proto::{Reader, Writer};

const SERVICE: &str = "/runtime.v1.RuntimeService";
/// How long a call may take beyond its own timeout (ExecSync, StopContainer).
const SLACK: Duration = Duration::from_secs(60);

/// `NamespaceMode.NODE`: the pod shares the node's namespace (here: the stand-in host's).
const NODE: u64 = 2;

/// `ContainerState`.
pub const CONTAINER_RUNNING: u64 = 1;
pub const CONTAINER_EXITED: u64 = 2;

/// A pod, as `PodSandboxConfig` describes it.
#[derive(Debug, Clone)]
pub struct Pod {
    pub name: String,
    pub uid: String,
    pub namespace: String,
    /// cgroupfs path the pod's containers are created under.
    pub cgroup_parent: String,
}

impl Pod {
    /// `PodSandboxConfig`: metadata (1) and linux (8: cgroup_parent 1, security_context 2 →
    /// namespace_options 1 → network 1 = NODE). No hostname: a pod on the node's network
    /// shares the node's UTS namespace too, where a runtime must not set one.
    fn config(&self) -> Writer {
        let metadata = Writer::new()
            .string(1, &self.name)
            .string(2, &self.uid)
            .string(3, &self.namespace);
        let namespaces = Writer::new().uint(1, NODE);
        let security = Writer::new().message(1, namespaces);
        let linux = Writer::new()
            .string(1, &self.cgroup_parent)
            .message(2, security);
        Writer::new().message(1, metadata).message(8, linux)
    }
}

/// What `ExecSync` returned.
#[derive(Debug, Clone)]
pub struct ExecResult {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
}

/// What `ContainerStatus` returned.
#[derive(Debug, Clone)]
pub struct Status {
    pub id: String,
    pub state: u64,
    pub exit_code: i32,
    pub reason: String,
    pub message: String,
}

/// A connection to a CRI server.
pub struct Cri {
    client: Client,
    limit: Duration,
}

impl Cri {
    pub fn connect(socket: &Path, limit: Duration) -> Result<Cri> {
        Ok(Cri {
            client: Client::connect(socket)?,
            limit,
        })
    }

    fn call(&mut self, method: &str, request: Writer, limit: Duration) -> Result<Vec<u8>> {
        self.client
            .call(&format!("{SERVICE}/{method}"), request.finish(), limit)
    }

    /// `Version`: the runtime's name and version (`VersionResponse` 2 and 3).
    pub fn version(&mut self) -> Result<(String, String)> {
        let answer = self.call("Version", Writer::new().string(1, "v1"), self.limit)?;
        let reader = Reader::new(&answer)?;
        Ok((reader.string(2), reader.string(3)))
    }

    /// `RunPodSandbox` (config 1, runtime_handler 2): the sandbox id (1).
    pub fn run_pod_sandbox(&mut self, pod: &Pod, handler: &str) -> Result<String> {
        let request = Writer::new().message(1, pod.config()).string(2, handler);
        let answer = self.call("RunPodSandbox", request, self.limit)?;
        Ok(Reader::new(&answer)?.string(1))
    }

    /// `CreateContainer` (pod_sandbox_id 1, config 2, sandbox_config 3) of a container named
    /// `name` running `command` from `image`: the container id (1).
    /// `ContainerConfig`: metadata 1 (name 1), image 2 (image 1), command 3.
    pub fn create_container(
        &mut self,
        pod_id: &str,
        pod: &Pod,
        name: &str,
        image: &str,
        command: &[&str],
    ) -> Result<String> {
        let config = Writer::new()
            .message(1, Writer::new().string(1, name))
            .message(2, Writer::new().string(1, image))
            .strings(3, command);
        let request = Writer::new()
            .string(1, pod_id)
            .message(2, config)
            .message(3, pod.config());
        let answer = self.call("CreateContainer", request, self.limit)?;
        Ok(Reader::new(&answer)?.string(1))
    }

    pub fn start_container(&mut self, id: &str) -> Result<()> {
        self.call("StartContainer", Writer::new().string(1, id), self.limit)
            .map(drop)
    }

    /// `ExecSync` (container_id 1, cmd 2, timeout 3 s): stdout 1, stderr 2, exit_code 3.
    pub fn exec_sync(&mut self, id: &str, cmd: &[&str], timeout: Duration) -> Result<ExecResult> {
        let request = Writer::new()
            .string(1, id)
            .strings(2, cmd)
            .int(3, timeout.as_secs() as i64);
        let answer = self.call("ExecSync", request, timeout + SLACK)?;
        let reader = Reader::new(&answer)?;
        Ok(ExecResult {
            stdout: String::from_utf8_lossy(reader.bytes(1)).into_owned(),
            stderr: String::from_utf8_lossy(reader.bytes(2)).into_owned(),
            exit_code: reader.int32(3),
        })
    }

    /// `ContainerStatus` (container_id 1): status 1 → id 1, state 3, exit_code 7, reason 10,
    /// message 11.
    pub fn container_status(&mut self, id: &str) -> Result<Status> {
        let answer = self.call("ContainerStatus", Writer::new().string(1, id), self.limit)?;
        let reader = Reader::new(&answer)?;
        let status = reader.message(1)?;
        Ok(Status {
            id: status.string(1),
            state: status.uint(3),
            exit_code: status.int32(7),
            reason: status.string(10),
            message: status.string(11),
        })
    }

    /// `StopContainer` (container_id 1, timeout 2 s): TERM, then KILL after the timeout.
    pub fn stop_container(&mut self, id: &str, timeout: Duration) -> Result<()> {
        let request = Writer::new().string(1, id).int(2, timeout.as_secs() as i64);
        self.call("StopContainer", request, timeout + SLACK)
            .map(drop)
    }

    pub fn remove_container(&mut self, id: &str) -> Result<()> {
        self.call("RemoveContainer", Writer::new().string(1, id), self.limit)
            .map(drop)
    }

    pub fn stop_pod_sandbox(&mut self, id: &str) -> Result<()> {
        self.call("StopPodSandbox", Writer::new().string(1, id), self.limit)
            .map(drop)
    }

    pub fn remove_pod_sandbox(&mut self, id: &str) -> Result<()> {
        self.call("RemovePodSandbox", Writer::new().string(1, id), self.limit)
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_config_puts_the_cgroup_parent_and_node_network_where_api_proto_says() {
        let pod = Pod {
            name: "p".into(),
            uid: "u".into(),
            namespace: "ns".into(),
            cgroup_parent: "/parent".into(),
        };
        let bytes = pod.config().finish();
        let config = Reader::new(&bytes).unwrap();
        let metadata = config.message(1).unwrap();
        assert_eq!(
            (metadata.string(1), metadata.string(2), metadata.string(3)),
            ("p".into(), "u".into(), "ns".into())
        );
        let linux = config.message(8).unwrap();
        assert_eq!(linux.string(1), "/parent");
        let network = linux.message(2).unwrap().message(1).unwrap().uint(1);
        assert_eq!(network, NODE);
    }
}
