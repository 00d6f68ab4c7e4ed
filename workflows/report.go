package workflows

import (
	"fmt"
	"strings"

	"go.temporal.io/sdk/workflow"
)

// ActivityWriteReport renders a finished run's (or experiment's) HTML
// report with internal/report and writes it to the store.
const ActivityWriteReport = "WriteReport"

// MemoReport is the memo key of the report's link.
const MemoReport = "report"

// WriteReportInput is one finished run or one finished experiment.
type WriteReportInput struct {
	Run     *RunResult `json:"run,omitempty"`
	Lineage []Node     `json:"lineage,omitempty"`
	// Experiment is set instead of Run for an experiment's report.
	Experiment *ExperimentResult `json:"experiment,omitempty"`
}

// WriteReportOutput names the stored report: Ref its content address,
// Location where a user opens it (a path in a file store, an http(s) URL
// in an S3 store behind an http(s) endpoint; "" when neither).
type WriteReportOutput struct {
	Ref      string `json:"ref"`
	Location string `json:"location,omitempty"`
}

// versionReportLink: from version 1 on, a finished run or experiment
// writes its HTML report to the store and links it in its memo and
// current details.
const versionReportLink = "report-link"

// writeReport stores the report and links it from the memo; best effort:
// a failure is logged and the result stands. It returns the link ("" when
// the store has none, or on failure).
func writeReport(ctx workflow.Context, r *run, in WriteReportInput, label string) string {
	if workflow.GetVersion(ctx, versionReportLink, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return ""
	}
	actx := r.activityCtx(ctx, r.cfg.TaskQueues.CPU, r.cfg.Timeouts.Publish, "HTML report of "+label)
	var out WriteReportOutput
	if err := workflow.ExecuteActivity(actx, ActivityWriteReport, in).Get(ctx, &out); err != nil {
		workflow.GetLogger(ctx).Warn("report not written", "error", errMessage(err))
		return ""
	}
	link := out.Location
	if link == "" {
		link = out.Ref // in the store, not reachable from outside: the reference still finds it
	}
	if err := workflow.UpsertMemo(ctx, map[string]any{MemoReport: link}); err != nil {
		workflow.GetLogger(ctx).Warn("report link not put in the memo", "error", err)
	}
	return link
}

// reportMarkdown is the current details' line linking the report.
func reportMarkdown(link string) string {
	if link == "" {
		return ""
	}
	href := link
	if strings.HasPrefix(link, "/") {
		href = "file://" + link
	}
	return fmt.Sprintf("\n\nreport: [%s](%s)", link, href)
}
