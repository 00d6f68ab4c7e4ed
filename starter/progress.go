package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// activityProgress summarises the run's running activities from their last
// heartbeat ("FineTune step=12 steps=30 loss=1.9"), so a long fine-tune or
// the demo's population shows it is moving.
func activityProgress(ctx context.Context, c client.Client, id string) string {
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return ""
	}
	return pendingSummary(desc)
}

func pendingSummary(desc *workflowservice.DescribeWorkflowExecutionResponse) string {
	var parts []string
	for _, pa := range desc.GetPendingActivities() {
		s := pa.GetActivityType().GetName()
		if p := pa.GetHeartbeatDetails().GetPayloads(); len(p) > 0 {
			var v any
			if json.Unmarshal(p[0].GetData(), &v) == nil {
				if d := compactDetails(v); d != "" {
					s += " " + d
				}
			}
		}
		if pa.GetAttempt() > 1 {
			s += fmt.Sprintf(" (attempt %d)", pa.GetAttempt())
		}
		parts = append(parts, s)
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// compactDetails renders a heartbeat detail as "k=v" pairs of its scalar fields.
func compactDetails(v any) string {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var out []string
		for _, k := range keys {
			switch val := x[k].(type) {
			case float64:
				out = append(out, k+"="+strconv.FormatFloat(val, 'g', 4, 64))
			case string:
				if val != "" && len(val) <= 24 {
					out = append(out, k+"="+val)
				}
			case bool:
				out = append(out, k+"="+strconv.FormatBool(val))
			}
		}
		return strings.Join(out, " ")
	case float64:
		return strconv.FormatFloat(x, 'g', 4, 64)
	case string:
		if len(x) <= 40 {
			return x
		}
	}
	return ""
}
