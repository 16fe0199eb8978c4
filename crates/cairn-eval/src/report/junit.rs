//! JUnit XML for CI systems: per run, a test suite of cases (failures carry the metrics that
//! failed with the judge's reasons) and one of gates.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::RunReport;

/// The runs as one JUnit XML document.
pub fn render(reports: &[RunReport]) -> Result<String, String> {
    let mut junit = Report::new("cairn eval");
    for report in reports {
        add_run(&mut junit, report);
    }
    junit.to_string().map_err(|e| e.to_string())
}

fn add_run(junit: &mut Report, report: &RunReport) {
    let mut cases = TestSuite::new(format!("{} cases ({})", report.suite, report.target));
    for case in &report.cases {
        let status = if case.passed {
            TestCaseStatus::success()
        } else {
            let failed = report.failures(case);
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status
                .set_message(failed.first().cloned().unwrap_or_default())
                .set_description(format!(
                    "question: {}\n{}",
                    case.case.question,
                    failed.join("\n")
                ));
            status
        };
        let mut test = TestCase::new(case.case.id.clone(), status);
        test.set_classname(format!("{}.cases", report.suite));
        let millis: f64 = case
            .attempts
            .iter()
            .filter_map(|a| a.answer.as_ref().map(|answer| answer.latency_ms))
            .sum();
        test.set_time(Duration::from_secs_f64(millis.max(0.0) / 1000.0));
        cases.add_test_case(test);
    }
    junit.add_test_suite(cases);
    let mut gates = TestSuite::new(format!("{} gates", report.suite));
    for gate in &report.gates {
        let status = if gate.passed {
            TestCaseStatus::success()
        } else {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(gate.detail.clone());
            status
        };
        let mut test = TestCase::new(gate.gate.clone(), status);
        test.set_classname(format!("{}.gates", report.suite));
        gates.add_test_case(test);
    }
    junit.add_test_suite(gates);
}
