package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/evomerge/evomerge/workflows"
)

// FinishedRun reads a run's result through the worker's Temporal client: an
// experiment started again under its old ID reuses the children that had
// completed instead of running them twice. A run still going is waited for
// (heartbeating); one that ended without a result is a non-retryable error
// naming how it ended.
func FinishedRun(ctx context.Context, in workflows.FinishedRunInput) (workflows.RunResult, error) {
	var res workflows.RunResult
	if in.WorkflowID == "" {
		return res, badInput("workflow_id: empty")
	}
	c := activity.GetClient(ctx)
	stop := keepHeartbeating(ctx, 10*time.Second, func() any { return in.WorkflowID })
	defer stop()
	err := c.GetWorkflow(ctx, in.WorkflowID, "").Get(ctx, &res)
	if err == nil {
		return res, nil
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	var wee *temporal.WorkflowExecutionError
	if errors.As(err, &wee) {
		status := "ended without a result"
		if d, derr := c.DescribeWorkflowExecution(ctx, in.WorkflowID, ""); derr == nil {
			status = "ended " + enumspb.WorkflowExecutionStatus_name[int32(d.GetWorkflowExecutionInfo().GetStatus())]
		}
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("run %s %s: %v", in.WorkflowID, status, err), workflows.ErrTypeBadInput, err)
	}
	return res, fmt.Errorf("reading the result of run %s: %w", in.WorkflowID, err)
}
