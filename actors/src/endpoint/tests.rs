//! The saga with a fake data plane: every failure point undoes exactly the completed steps.

use super::*;
use crate::types::{host_if_name, mac_for};
use std::net::Ipv4Addr;
use std::sync::Mutex;

#[derive(Default)]
struct Fake {
    fail_at: Option<&'static str>,
    log: Mutex<Vec<&'static str>>,
}

impl Fake {
    fn step(&self, name: &'static str) -> Result<(), StepError> {
        self.log.lock().unwrap().push(name);
        if self.fail_at == Some(name) {
            return Err(StepError::new(
                ErrorKind::Dataplane,
                format!("{name} broke"),
            ));
        }
        Ok(())
    }

    fn log(&self) -> Vec<&'static str> {
        self.log.lock().unwrap().clone()
    }
}

fn request() -> AttachRequest {
    AttachRequest {
        container_id: "c1".into(),
        netns: "/run/netns/x".into(),
        if_name: "eth0".into(),
        tenant: "default".into(),
        network: "net".into(),
        group: String::new(),
        mtu: None,
        container_name: String::new(),
    }
}

#[async_trait]
impl AttachOps for Fake {
    async fn allocate(&self, req: &AttachRequest) -> Result<Endpoint, StepError> {
        self.step("allocate")?;
        let ip = Ipv4Addr::new(10, 1, 2, 3);
        Ok(Endpoint {
            id: req.endpoint_id(),
            container_id: req.container_id.clone(),
            netns: req.netns.clone(),
            if_name: req.if_name.clone(),
            tenant: req.tenant.clone(),
            network: req.network_key(),
            group: req.group_key(),
            group_id: 0,
            ip,
            prefix_len: 24,
            gateway: Some(Ipv4Addr::new(10, 1, 2, 1)),
            mac: mac_for(ip),
            host_if: host_if_name(&req.endpoint_id()),
            ofport: 0,
            mtu: 1500,
            container_name: String::new(),
        })
    }
    async fn release(&self, _: &Endpoint) -> Result<(), StepError> {
        self.step("release")
    }
    async fn wire(&self, _: &Endpoint) -> Result<(), StepError> {
        self.step("wire")
    }
    async fn unwire(&self, _: &Endpoint) -> Result<(), StepError> {
        self.step("unwire")
    }
    async fn add_port(&self, _: &Endpoint) -> Result<u32, StepError> {
        self.step("add_port").map(|()| 7)
    }
    async fn del_port(&self, _: &Endpoint) -> Result<(), StepError> {
        self.step("del_port")
    }
    async fn add_flows(&self, ep: &Endpoint) -> Result<(), StepError> {
        assert_eq!(ep.ofport, 7, "flows see the port number");
        self.step("add_flows")
    }
    async fn del_flows(&self, _: &Endpoint) -> Result<(), StepError> {
        self.step("del_flows")
    }
    async fn add_route(&self, _: &Endpoint) -> Result<(), StepError> {
        self.step("add_route")
    }
    async fn del_route(&self, _: &Endpoint) -> Result<(), StepError> {
        self.step("del_route")
    }
    async fn record(&self, _: &Endpoint) -> Result<(), StepError> {
        self.step("record")
    }
    async fn unrecord(&self, _: &Endpoint) -> Result<(), StepError> {
        self.step("unrecord")
    }
    async fn check(&self, _: &Endpoint) -> Result<(), StepError> {
        self.step("check")
    }
    async fn lookup(&self, _: &str) -> Result<Option<Endpoint>, StepError> {
        Ok(None)
    }
    async fn sweep(&self, _: &str) -> Result<(), StepError> {
        self.step("sweep")
    }
    async fn prewire(&self, _: &AttachRequest) -> Result<(), StepError> {
        self.step("prewire")
    }
    async fn restore(&self) -> Result<Vec<Endpoint>, StepError> {
        Ok(Vec::new())
    }
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn attach_runs_every_step_in_order() {
    let fake = Fake::default();
    let ep = run(Saga::attach(&fake, &request())).unwrap();
    assert_eq!(ep.ofport, 7);
    // The route goes as soon as the address is known; the record runs alongside the data
    // plane (the fake never yields, so each strand runs to its end in turn).
    assert_eq!(
        fake.log(),
        [
            "allocate",
            "add_route",
            "prewire",
            "wire",
            "add_port",
            "add_flows",
            "record"
        ]
    );
}

#[test]
fn a_failure_undoes_exactly_the_attempted_steps_newest_first() {
    // A failed step is undone too (it may have half-happened); the route runs alongside the
    // veth and the data plane, so it is attempted whenever there is an address, and it is
    // withdrawn after the data plane is undone and before the address goes.
    const FULL: &[&str] = &[
        "allocate",
        "add_route",
        "prewire",
        "wire",
        "add_port",
        "add_flows",
        "record",
        "unrecord",
        "del_flows",
        "del_port",
        "unwire",
        "del_route",
        "release",
    ];
    let cases: [(&str, &[&str]); 7] = [
        // The pair made alongside a failed allocation is swept by the endpoint's name.
        ("allocate", &["allocate", "prewire", "sweep"]),
        (
            "prewire",
            &[
                "allocate",
                "add_route",
                "prewire",
                "unwire",
                "del_route",
                "release",
            ],
        ),
        (
            "wire",
            &[
                "allocate",
                "add_route",
                "prewire",
                "wire",
                "record",
                "unrecord",
                "unwire",
                "del_route",
                "release",
            ],
        ),
        (
            "add_port",
            &[
                "allocate",
                "add_route",
                "prewire",
                "wire",
                "add_port",
                "record",
                "unrecord",
                "del_port",
                "unwire",
                "del_route",
                "release",
            ],
        ),
        ("add_flows", FULL),
        ("add_route", FULL),
        ("record", FULL),
    ];
    for (fail_at, log) in cases {
        let fake = Fake {
            fail_at: Some(fail_at),
            ..Fake::default()
        };
        let err = run(Saga::attach(&fake, &request())).unwrap_err();
        assert!(err.undo_errors.is_empty());
        assert_eq!(fake.log(), log, "failing at {fail_at}");
    }
}

#[test]
fn detach_runs_every_undo_and_reports_failures() {
    let fake = Fake {
        fail_at: Some("del_port"),
        ..Fake::default()
    };
    let ep = run(Fake::default().allocate(&request())).unwrap();
    let errors = run(Saga::detach(&fake, &ep));
    assert_eq!(
        fake.log(),
        [
            "unrecord",
            "del_route",
            "del_flows",
            "del_port",
            "unwire",
            "release"
        ]
    );
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, Step::Port);
}

#[test]
fn gc_picks_attached_endpoints_not_listed_and_not_busy() {
    let mut state = Endpoints::default();
    let ep = run(Fake::default().allocate(&request())).unwrap();
    let mut other = ep.clone();
    other.id = "c2-eth0".into();
    let mut third = ep.clone();
    third.id = "c3-eth0".into();
    for e in [&ep, &other, &third] {
        state.attached.insert(e.id.clone(), e.clone());
    }
    assert!(state.begin("c3-eth0"));
    assert!(!state.begin("c3-eth0"));
    let valid = BTreeSet::from([ep.id.clone()]);
    let stale: Vec<String> = state.stale(&valid).into_iter().map(|e| e.id).collect();
    assert_eq!(stale, ["c2-eth0"]);
}
