package activities

import (
	"context"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"

	"github.com/evomerge/evomerge/workflows"
)

// registerEngineActivities registers the activities that need the model
// engines (llm, train, eval).
func (a *Activities) registerEngineActivities(r worker.ActivityRegistry) {
	r.RegisterActivityWithOptions(a.InitPopulation, activity.RegisterOptions{Name: workflows.ActivityInitPopulation})
	r.RegisterActivityWithOptions(a.Evaluate, activity.RegisterOptions{Name: workflows.ActivityEvaluate})
}

func (a *Activities) demoPopulation(ctx context.Context, in workflows.InitPopulationInput) (workflows.InitPopulationOutput, error) {
	return workflows.InitPopulationOutput{}, badInput("init.demo: this build has no training engine (internal/llm, internal/train)")
}
