//! OneCycleLR against sequences exported from `torch.optim.lr_scheduler.OneCycleLR`
//! (tests/fixtures/make_lowlevel_fixtures.py -> tests/fixtures/lowlevel/onecycle.json).

use brainscope::train::onecycle::{OneCycleConfig, OneCycleLr};

#[derive(serde::Deserialize)]
struct Case {
    config: Cfg,
    lr: Vec<f64>,
    beta1: Vec<f64>,
}

#[derive(serde::Deserialize)]
struct Cfg {
    max_lr: f64,
    total_steps: usize,
    pct_start: f64,
}

fn cases() -> Vec<Case> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lowlevel/onecycle.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn rel_err(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-30)
}

#[test]
fn lr_and_beta1_match_pytorch_every_step() {
    let cases = cases();
    assert!(cases.len() >= 3);
    for case in cases {
        let c = &case.config;
        assert_eq!(case.lr.len(), c.total_steps);
        let mut sched = OneCycleConfig::new(c.max_lr, c.total_steps, c.pct_start).init().unwrap();
        for (k, (&lr, &beta1)) in case.lr.iter().zip(&case.beta1).enumerate() {
            if k > 0 {
                sched.step().unwrap();
            }
            let v = sched.current().unwrap();
            assert!(
                rel_err(v.lr, lr) <= 1e-9,
                "total {} step {k}: lr {} vs torch {lr}",
                c.total_steps,
                v.lr
            );
            assert!(
                rel_err(v.beta1, beta1) <= 1e-9,
                "total {} step {k}: beta1 {} vs torch {beta1}",
                c.total_steps,
                v.beta1
            );
        }
    }
}

#[test]
fn resumed_schedule_continues_the_same_sequence() {
    let case = cases().remove(1);
    let c = &case.config;
    let mut sched = OneCycleConfig::new(c.max_lr, c.total_steps, c.pct_start).init().unwrap();
    for _ in 0..20 {
        sched.step().unwrap();
    }
    let state = serde_json::to_string(&sched.state()).unwrap();
    let mut resumed = OneCycleLr::from_state(serde_json::from_str(&state).unwrap()).unwrap();
    for k in 21..c.total_steps {
        let v = resumed.step().unwrap();
        assert!(rel_err(v.lr, case.lr[k]) <= 1e-9);
        assert!(rel_err(v.beta1, case.beta1[k]) <= 1e-9);
    }
}
