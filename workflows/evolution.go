package workflows

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// ErrTypeInvalidConfig is the error type of a run that fails because its
// config is invalid (the message names the fields).
const ErrTypeInvalidConfig = "InvalidConfig"

var (
	modelRefRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// RegisterWorkflows registers the Evolution workflow under its stable name.
func RegisterWorkflows(r worker.WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(Evolution, workflow.RegisterOptions{Name: WorkflowEvolution})
	r.RegisterWorkflowWithOptions(Experiment, workflow.RegisterOptions{Name: WorkflowExperiment})
}

// Evolution runs one generation per workflow execution and continues as new
// with the population, PRNG state and lineage, so its history stays small no
// matter how many generations a run has.
func Evolution(ctx workflow.Context, in EvolutionInput) (*RunResult, error) {
	cfg, err := Prepare(in.RunConfig)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidConfig, nil)
	}
	r := &run{cfg: cfg, st: in.State}
	if err := r.registerHandlers(ctx); err != nil {
		return nil, err
	}
	if r.budgeted() {
		r.budgetV = workflow.GetVersion(ctx, versionBudget, workflow.DefaultVersion, 1)
	}
	if r.st == nil {
		if err := r.initPopulation(ctx); err != nil {
			return nil, err
		}
	}
	r.upsertSearch(ctx)

	// Evaluate whatever is unscored (generation 0, or a continued lineage).
	if err := r.evaluatePopulation(ctx); err != nil {
		return nil, err
	}
	if len(r.st.History) == 0 {
		r.recordStats(0, 0, 0)
		r.measureDiversity(ctx)
		r.upsertSearch(ctx)
	}

	if reason := r.stopReason(ctx); reason == "" {
		if err := r.generation(ctx); err != nil {
			return nil, err
		}
		r.upsertSearch(ctx)
	}

	if reason := r.stopReason(ctx); reason != "" {
		return r.finish(ctx, reason)
	}
	r.setPhase(ctx, "continuing as new")
	// Updates in flight must finish before the history is closed.
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return nil, err
	}
	return nil, workflow.NewContinueAsNewError(ctx, WorkflowEvolution, EvolutionInput{RunConfig: cfg, State: r.st})
}

type run struct {
	cfg           RunConfig
	st            *RunState
	phase         string
	childrenDone  int
	childrenTotal int
	stopRequested string
	ledger        ledger
	budgetV       workflow.Version // versionBudget of this execution
	reportLink    string
}

func (r *run) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) { return r.status(), nil }); err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(ctx, QueryLeaderboard, func() ([]Node, error) {
		if r.st == nil {
			return nil, nil
		}
		return r.st.leaderboard(), nil
	}); err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(ctx, QueryLineage, func() ([]Node, error) {
		if r.st == nil {
			return nil, nil
		}
		return r.st.Nodes, nil
	}); err != nil {
		return err
	}
	stop := func(reason string) {
		if r.stopRequested != "" {
			return
		}
		if strings.TrimSpace(reason) == "" {
			reason = "stop requested"
		}
		r.stopRequested = reason
		workflow.GetLogger(ctx).Info("stop requested; ending after the current generation", "reason", reason)
		r.updateDetails(ctx)
	}
	if err := workflow.SetUpdateHandler(ctx, UpdateStop, func(ctx workflow.Context, reason string) (Status, error) {
		stop(reason)
		return r.status(), nil
	}); err != nil {
		return err
	}
	ch := workflow.GetSignalChannel(ctx, SignalStop)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var reason string
			ch.Receive(ctx, &reason)
			stop(reason)
		}
	})
	return nil
}

func (r *run) status() Status {
	s := Status{
		Run: r.cfg.Name, Generations: r.cfg.Generations, Phase: r.phase,
		ChildrenDone: r.childrenDone, ChildrenTotal: r.childrenTotal,
		Stopping: r.stopRequested != "", StopReason: r.stopRequested,
	}
	if r.st != nil {
		s.Generation = r.st.Generation
		if r.childrenTotal > 0 {
			s.Generation++ // a generation is in progress
		}
		if lb := r.st.leaderboard(); len(lb) > 0 {
			best := lb[0]
			s.Best = &best
		}
		s.History = r.st.History
		s.TrainTokens, s.EvalItems = r.st.TrainTokens, r.st.EvalItems
		s.ScoredTokens, s.BudgetTokens = r.st.ScoredTokens, r.cfg.Budgets.Tokens
	}
	return s
}

func (r *run) setPhase(ctx workflow.Context, phase string) {
	r.phase = phase
	r.updateDetails(ctx)
}

// updateDetails keeps the web UI's "current details" readable.
func (r *run) updateDetails(ctx workflow.Context) {
	s := r.status()
	var b strings.Builder
	fmt.Fprintf(&b, "**%s** · generation %d/%d · %s", s.Run, s.Generation, s.Generations, s.Phase)
	if s.ChildrenTotal > 0 {
		fmt.Fprintf(&b, " · children %d/%d", s.ChildrenDone, s.ChildrenTotal)
	}
	if s.Best != nil {
		fmt.Fprintf(&b, " · best #%d %.4f", s.Best.ID, s.Best.Fitness)
	}
	if n := len(s.History); n > 0 && s.History[n-1].Diversity != nil {
		d := s.History[n-1].Diversity
		fmt.Fprintf(&b, " · diversity %.3f · fitness σ %.4f", d.MeanDistance, d.FitnessStd)
	}
	if s.Stopping {
		fmt.Fprintf(&b, " · stopping (%s)", s.StopReason)
	}
	b.WriteString(reportMarkdown(r.reportLink))
	workflow.SetCurrentDetails(ctx, b.String())
}

func (r *run) upsertSearch(ctx workflow.Context) {
	updates := []temporal.SearchAttributeUpdate{
		SearchRun.ValueSet(r.cfg.Name),
		SearchGeneration.ValueSet(int64(r.st.Generation)),
	}
	if lb := r.st.leaderboard(); len(lb) > 0 {
		updates = append(updates, SearchBestFitness.ValueSet(lb[0].Fitness))
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		// Visibility is best effort; the run itself must not depend on it.
		workflow.GetLogger(ctx).Warn("upserting search attributes failed", "error", err)
	}
}

// activityCtx sets deliberate timeouts and retries for one activity call:
// a heartbeat timeout to notice a dead worker quickly, backoff between
// attempts, and the non-retryable error types never retried.
func (r *run) activityCtx(ctx workflow.Context, queue string, startToClose Duration, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           queue,
		StartToCloseTimeout: time.Duration(startToClose),
		HeartbeatTimeout:    time.Duration(r.cfg.Timeouts.Heartbeat),
		Summary:             summary,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			MaximumAttempts:        int32(r.cfg.Timeouts.MaxAttempts),
			NonRetryableErrorTypes: NonRetryableErrorTypes,
		},
	})
}

func (r *run) initPopulation(ctx workflow.Context) error {
	cfg := r.cfg
	r.st = &RunState{RNG: *NewRNG(cfg.Seed), StartedAt: workflow.Now(ctx), InitialBest: -1}
	r.setPhase(ctx, "creating the initial population")
	in := initPopulationInput(cfg)
	summary := fmt.Sprintf("init population of %d", cfg.Population)
	switch {
	case in.ContinueLineage != "":
		summary += " from lineage " + in.ContinueLineage
	case len(in.Models) > 0:
		summary = fmt.Sprintf("import %d models", len(in.Models))
	case in.Demo != nil:
		summary += " (demo: tiny base + specialists)"
	}
	var out InitPopulationOutput
	actx := r.activityCtx(ctx, cfg.TaskQueues.GPU, cfg.Timeouts.Init, summary)
	if err := workflow.ExecuteActivity(actx, ActivityInitPopulation, in).Get(ctx, &out); err != nil {
		return fmt.Errorf("creating the initial population: %w", err)
	}
	if len(out.Members) < 2 {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("initial population has %d members; at least 2 are needed", len(out.Members)), ErrTypeBadInput, nil)
	}
	if out.Base != "" && !modelRefRE.MatchString(out.Base) {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("InitPopulation returned base %q, not a sha256:<hex> model ref", out.Base), ErrTypeBadInput, nil)
	}
	r.st.Base = out.Base
	if out.Source == SourceLineage {
		out.Members = bestOfLineage(out.Members, cfg.Population)
	}
	for i, m := range out.Members {
		if !modelRefRE.MatchString(m.Ref) {
			return temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("InitPopulation member %d has ref %q, not a sha256:<hex> model ref", i, m.Ref), ErrTypeBadInput, nil)
		}
		r.st.Nodes = append(r.st.Nodes, Node{ID: i, Ref: m.Ref, Op: m.Origin, Status: StatusAlive})
		r.st.Population = append(r.st.Population, i)
	}
	return nil
}

// initPopulationInput is generation 0's request; an experiment's parent
// makes the same one, so its memo key is the children's.
func initPopulationInput(cfg RunConfig) InitPopulationInput {
	return InitPopulationInput{
		Run: cfg.Name, Seed: cfg.initSeed(), Size: cfg.Population,
		ContinueLineage: cfg.Init.ContinueLineage, Models: cfg.Init.Models, Base: cfg.Init.Base, Demo: cfg.Init.Demo,
	}
}

func (r *run) suite(split string) SuiteSpec { return suiteFor(r.cfg, split) }

// suiteFor is fitness.dev (validation: what selection sees) or fitness.test
// (the held-out report); an experiment's parent scores generation 0 with the
// same one, so the eval cache keys coincide.
func suiteFor(cfg RunConfig, split string) SuiteSpec {
	s := SuiteSpec{Name: "fitness.dev", Split: split, Seed: cfg.fitnessSeed(), Tasks: cfg.Fitness.Dev}
	if split == SplitTest {
		s.Name, s.Tasks = "fitness.test", cfg.Fitness.Test
	}
	return s
}

func (r *run) evaluate(ctx workflow.Context, ref ModelRef, split, label string) (EvaluateOutput, error) {
	var out EvaluateOutput
	actx := r.activityCtx(ctx, r.cfg.TaskQueues.GPU, r.cfg.Timeouts.Evaluate, "evaluate "+label+" on "+split)
	err := workflow.ExecuteActivity(actx, ActivityEvaluate, EvaluateInput{Run: r.cfg.Name, Model: ref, Suite: r.suite(split), Label: label}).Get(ctx, &out)
	if err != nil {
		return out, err
	}
	if !finite(out.Fitness) {
		return out, fmt.Errorf("evaluation returned non-finite fitness %v", out.Fitness)
	}
	r.st.EvalItems += int64(out.Items)
	if split == SplitTest {
		r.st.HeldOutTokens += out.Tokens
	} else {
		r.st.ScoredTokens += out.Tokens
		r.observeEval(out.Tokens)
	}
	return out, nil
}

// evaluatePopulation scores unscored members in parallel; members whose
// evaluation fails are dropped with the reason.
func (r *run) evaluatePopulation(ctx workflow.Context) error {
	var todo []int
	for _, id := range r.st.Population {
		if !r.st.Nodes[id].Scored {
			todo = append(todo, id)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	r.setPhase(ctx, fmt.Sprintf("evaluating %d models", len(todo)))
	r.parallel(ctx, todo, func(ctx workflow.Context, id int) {
		out, err := r.evaluate(ctx, r.st.Nodes[id].Ref, SplitValidation, fmt.Sprintf("#%d", id))
		if err != nil {
			r.drop(ctx, id, "evaluation failed: "+errMessage(err))
			return
		}
		n := &r.st.Nodes[id]
		n.Scored, n.Fitness, n.Tasks = true, out.Fitness, out.Tasks
	})
	var alive []int
	for _, id := range r.st.Population {
		if r.st.Nodes[id].Scored {
			alive = append(alive, id)
		}
	}
	r.st.Population = alive
	if len(alive) < 2 {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("only %d models of the population could be evaluated; at least 2 are needed", len(alive)), ErrTypeEvalFailed, nil)
	}
	if r.st.InitialBest < 0 {
		r.st.InitialBest = ranked(r.st.Nodes, alive)[0]
	}
	return nil
}

// parallel runs fn for every id, at most cfg.Parallelism at once, and waits.
func (r *run) parallel(ctx workflow.Context, ids []int, fn func(workflow.Context, int)) {
	sem := workflow.NewSemaphore(ctx, int64(r.cfg.Parallelism))
	wg := workflow.NewWaitGroup(ctx)
	for _, id := range ids {
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			if err := sem.Acquire(ctx, 1); err != nil {
				return
			}
			defer sem.Release(1)
			fn(ctx, id)
		})
	}
	wg.Wait(ctx)
}

func (r *run) drop(ctx workflow.Context, id int, reason string) {
	n := &r.st.Nodes[id]
	n.Status, n.Reason, n.Scored = StatusDropped, reason, false
	workflow.GetLogger(ctx).Warn("model dropped", "id", id, "reason", reason)
}

// generation plans and runs one generation's children and keeps survivors.
func (r *run) generation(ctx workflow.Context) error {
	st, cfg := r.st, r.cfg
	gen := st.Generation + 1
	rankedPop := ranked(st.Nodes, st.Population)
	plans := planByMode(cfg, &st.RNG, st.Nodes, rankedPop, st.Base, len(st.Nodes))
	children := make([]int, len(plans))
	for i, p := range plans {
		st.Nodes = append(st.Nodes, Node{ID: p.ID, Generation: gen, Parents: p.Parents, Op: opLabel(p), Status: "pending"})
		children[i] = p.ID
	}
	r.childrenDone, r.childrenTotal = 0, len(plans)
	skippedBefore := r.ledger.skipped
	r.setPhase(ctx, fmt.Sprintf("breeding generation %d", gen))
	if r.budgetV >= 1 {
		r.breedInOrder(ctx, plans)
	} else {
		r.parallel(ctx, identity(len(plans)), func(ctx workflow.Context, i int) {
			r.child(ctx, plans[i])
			r.childrenDone++
			r.updateDetails(ctx)
		})
	}

	var survivors []int
	if cfg.mode() == ModeRandomMerge {
		survivors = randomSurvivors(cfg, &st.RNG, st.Nodes, st.Population, children)
	} else {
		survivors = Survivors(cfg, st.Nodes, st.Population, children)
	}
	for _, id := range st.Population {
		if !contains(survivors, id) {
			st.Nodes[id].Status = StatusRetired
		}
	}
	dropped := 0
	for _, id := range children {
		switch {
		case st.Nodes[id].Status == StatusDropped, st.Nodes[id].Status == StatusSkipped:
			if st.Nodes[id].Status == StatusDropped {
				dropped++
			}
		case contains(survivors, id):
			st.Nodes[id].Status = StatusAlive
		default:
			st.Nodes[id].Status = StatusCulled
		}
	}
	st.Population = survivors
	st.Generation = gen
	r.childrenDone, r.childrenTotal = 0, 0
	r.recordStats(gen, len(plans), dropped)
	st.History[len(st.History)-1].Skipped = r.ledger.skipped - skippedBefore
	r.measureDiversity(ctx)
	best := st.History[len(st.History)-1]
	workflow.GetLogger(ctx).Info("generation done", "generation", gen, "best", best.Best, "mean", best.Mean, "dropped", dropped)
	r.setPhase(ctx, fmt.Sprintf("generation %d done", gen))
	return nil
}

// opLabel is a child's lineage entry: "merge … → fine-tune …", or for
// finetune_only "fine-tune … of #p".
func opLabel(p ChildPlan) string {
	op := "merge " + p.MergeLabel
	if p.FineTune != nil {
		op += " → fine-tune " + p.TuneLabel
	}
	if p.Genome.Method == "" { // finetune_only: no merge
		op = "fine-tune " + p.TuneLabel + " of " + p.MergeLabel
	}
	return op
}

// child runs merge → fine-tune → evaluate for one planned child; any failure
// drops the child with its reason and the generation goes on.
func (r *run) child(ctx workflow.Context, p ChildPlan) {
	res := &reservation{}
	if r.budgeted() {
		var ok bool
		if *res, ok = r.admit(ctx, &p); !ok {
			return
		}
		defer r.done(res)
	}
	r.build(ctx, p, res)
}

// breedInOrder runs a budgeted generation's children (budget version 1), at
// most parallelism at once, admitting them to the budget strictly in plan
// order: each admission sees the same spend and reservations whatever order
// the activities of earlier children finish in, so the children made, cut
// or skipped do not depend on timing (given estimates that hold).
func (r *run) breedInOrder(ctx workflow.Context, plans []ChildPlan) {
	sem := workflow.NewSemaphore(ctx, int64(r.cfg.Parallelism))
	wg := workflow.NewWaitGroup(ctx)
	turn := 0
	for i := range plans {
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			if err := workflow.Await(ctx, func() bool { return turn == i }); err != nil {
				return
			}
			if err := sem.Acquire(ctx, 1); err != nil {
				turn++
				return
			}
			defer sem.Release(1)
			p := plans[i]
			res, ok := r.admit(ctx, &p)
			turn++
			if ok {
				r.build(ctx, p, &res)
				r.done(&res)
			}
			r.childrenDone++
			r.updateDetails(ctx)
		})
	}
	wg.Wait(ctx)
}

// admit reserves the child's cost, or marks it skipped when the budget
// cannot cover it; a child cut at the budget's edge says so in its op.
func (r *run) admit(ctx workflow.Context, p *ChildPlan) (reservation, bool) {
	cfg := r.cfg
	planned := p.FineTune
	est, ok := r.reserve(ctx, p)
	if !ok {
		n := &r.st.Nodes[p.ID]
		n.Status, n.Reason = StatusSkipped, fmt.Sprintf("not made: the compute budget (%d tokens, %d used) cannot cover it", cfg.Budgets.Tokens, r.spent())
		return est, false
	}
	if p.FineTune != planned { // cut at the budget's edge
		op := opLabel(*p)
		if p.FineTune == nil {
			op += fmt.Sprintf(" (its fine-tune of %d steps left out: the budget had no step left)", planned.Steps)
		} else {
			op += fmt.Sprintf(" (cut from %d steps to fit the budget)", planned.Steps)
		}
		r.st.Nodes[p.ID].Op = op
	}
	return est, true
}

// build makes an admitted child: merge, fine-tune, evaluate.
func (r *run) build(ctx workflow.Context, p ChildPlan, res *reservation) {
	cfg := r.cfg
	ref := p.Inputs[0] // finetune_only: the parent itself
	if p.Genome.Method != "" {
		var m MergeOutput
		mctx := r.activityCtx(ctx, cfg.TaskQueues.CPU, cfg.Timeouts.Merge, "merge "+p.MergeLabel)
		err := workflow.ExecuteActivity(mctx, ActivityMerge, MergeInput{Run: cfg.Name, Inputs: p.Inputs, Genome: p.Genome, Label: p.MergeLabel}).Get(ctx, &m)
		if err != nil {
			r.drop(ctx, p.ID, "merge failed: "+errMessage(err))
			return
		}
		if !modelRefRE.MatchString(m.Ref) {
			r.drop(ctx, p.ID, fmt.Sprintf("merge returned %q, not a sha256:<hex> model ref", m.Ref))
			return
		}
		ref = m.Ref
	}
	if p.FineTune != nil {
		var f FineTuneOutput
		fctx := r.activityCtx(ctx, cfg.TaskQueues.GPU, cfg.Timeouts.FineTune, fmt.Sprintf("fine-tune %s (#%d)", p.TuneLabel, p.ID))
		err := workflow.ExecuteActivity(fctx, ActivityFineTune, FineTuneInput{Run: cfg.Name, Base: ref, Params: *p.FineTune, Label: p.TuneLabel}).Get(ctx, &f)
		if err != nil {
			what := "fine-tune failed: "
			if isErrType(err, ErrTypeDiverged) {
				what = "fine-tune diverged: "
			}
			r.drop(ctx, p.ID, what+errMessage(err))
			return
		}
		if !modelRefRE.MatchString(f.Ref) {
			r.drop(ctx, p.ID, fmt.Sprintf("fine-tune returned %q, not a sha256:<hex> model ref", f.Ref))
			return
		}
		r.st.TrainTokens += f.Tokens
		r.observeTrain(f.Tokens, f.Steps)
		if r.budgeted() {
			spent := r.spentByFineTune(*res, f.Tokens)
			r.releaseTrain(res)
			if spent {
				n := &r.st.Nodes[p.ID]
				n.Ref = f.Ref
				n.Status, n.Reason = StatusSkipped, fmt.Sprintf("not evaluated: its fine-tune (%d tokens) spent the compute budget (%d tokens, %d used)", f.Tokens, cfg.Budgets.Tokens, r.spent())
				r.ledger.skipped++
				return
			}
		}
		ref = f.Ref
	}
	r.st.Nodes[p.ID].Ref = ref
	e, err := r.evaluate(ctx, ref, SplitValidation, fmt.Sprintf("#%d", p.ID))
	if err != nil {
		r.drop(ctx, p.ID, "evaluation failed: "+errMessage(err))
		return
	}
	n := &r.st.Nodes[p.ID]
	n.Scored, n.Fitness, n.Tasks = true, e.Fitness, e.Tasks
}

func (r *run) recordStats(gen, children, dropped int) {
	st := r.st
	lb := ranked(st.Nodes, st.Population)
	sum := 0.0
	for _, id := range lb {
		sum += st.Nodes[id].Fitness
	}
	g := GenStats{Generation: gen, Children: children, Dropped: dropped, TrainTokens: st.TrainTokens, ScoredTokens: st.ScoredTokens}
	if len(lb) > 0 {
		g.Best, g.BestID, g.Mean = st.Nodes[lb[0]].Fitness, lb[0], sum/float64(len(lb))
	}
	if st.InitialBest >= 0 {
		g.BestInitial = st.Nodes[st.InitialBest].Fitness
	}
	st.History = append(st.History, g)
}

// versionDiversity: from this version on, each generation's diversity is
// measured by the Diversity activity (histories recorded before replay without it).
const versionDiversity = "diversity"

// measureDiversity records the current population's diversity in the last
// history row. It is best effort: a failed measurement is logged and the
// run goes on without it.
func (r *run) measureDiversity(ctx workflow.Context) {
	if workflow.GetVersion(ctx, versionDiversity, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return
	}
	st := r.st
	ids := ranked(st.Nodes, st.Population)
	if len(ids) < 2 {
		return
	}
	in := DiversityInput{Run: r.cfg.Name, Ancestor: st.Base, Label: fmt.Sprintf("generation %d", st.Generation)}
	for _, id := range ids {
		in.Models = append(in.Models, st.Nodes[id].Ref)
		in.Scores = append(in.Scores, st.Nodes[id].Fitness)
	}
	r.setPhase(ctx, fmt.Sprintf("measuring the diversity of generation %d", st.Generation))
	actx := r.activityCtx(ctx, r.cfg.TaskQueues.CPU, r.cfg.Timeouts.Merge, fmt.Sprintf("diversity of %d models, generation %d", len(ids), st.Generation))
	var out DiversityOutput
	if err := workflow.ExecuteActivity(actx, ActivityDiversity, in).Get(ctx, &out); err != nil {
		workflow.GetLogger(ctx).Warn("diversity not measured", "generation", st.Generation, "error", errMessage(err))
		return
	}
	d := out.GenDiversity
	if !finite(d.MeanDistance) || !finite(d.FitnessStd) {
		workflow.GetLogger(ctx).Warn("diversity not finite; not recorded", "generation", st.Generation)
		return
	}
	st.History[len(st.History)-1].Diversity = &d
}

// stopReason says why the run should end now, or "" to go on.
func (r *run) stopReason(ctx workflow.Context) string {
	st, b := r.st, r.cfg.Budgets
	switch {
	case r.stopRequested != "":
		return r.stopRequested
	case st.Generation >= r.cfg.Generations:
		return fmt.Sprintf("completed %d generations", st.Generation)
	case b.WallTime > 0 && workflow.Now(ctx).Sub(st.StartedAt) >= time.Duration(b.WallTime):
		return fmt.Sprintf("wall-time budget %s reached", time.Duration(b.WallTime))
	case b.TrainTokens > 0 && st.TrainTokens >= b.TrainTokens:
		return fmt.Sprintf("training-token budget %d reached (%d used)", b.TrainTokens, st.TrainTokens)
	case b.EvalItems > 0 && st.EvalItems >= b.EvalItems:
		return fmt.Sprintf("evaluation budget %d items reached (%d used)", b.EvalItems, st.EvalItems)
	case r.budgetReason() != "":
		return r.budgetReason()
	}
	return ""
}

// finish publishes the winner, compares it with the best initial model on
// the held-out split and returns the run's result.
func (r *run) finish(ctx workflow.Context, reason string) (*RunResult, error) {
	st, cfg := r.st, r.cfg
	lb := st.leaderboard()
	winner := lb[0]
	if cfg.mode() == ModeRandomMerge {
		// Without selection the population drifts; random search keeps the best it has seen.
		winner = st.Nodes[bestEver(st.Nodes)]
	}
	res := &RunResult{Run: cfg.Name, Winner: winner, History: st.History, StopReason: reason,
		Mode: cfg.mode(), Generations: st.Generation, BudgetTokens: cfg.Budgets.Tokens}
	for _, n := range st.Nodes {
		if n.Status == StatusDropped {
			res.Dropped++
		}
	}

	r.setPhase(ctx, "publishing the winner")
	pop := make([]LineageMember, len(lb))
	for i, n := range lb {
		pop[i] = LineageMember{ID: n.ID, Ref: n.Ref, Fitness: n.Fitness}
	}
	var pub PublishOutput
	pctx := r.activityCtx(ctx, cfg.TaskQueues.CPU, cfg.Timeouts.Publish,
		fmt.Sprintf("publish #%d to %s", winner.ID, cfg.Publish.Kind))
	in := PublishInput{Run: cfg.Name, Model: winner.Ref, Target: *cfg.Publish, Lineage: cfg.Lineage, Population: pop, Base: st.Base}
	if err := workflow.ExecuteActivity(pctx, ActivityPublish, in).Get(ctx, &pub); err != nil {
		return nil, fmt.Errorf("publishing winner #%d: %w", winner.ID, err)
	}
	res.Published = pub.Location

	r.setPhase(ctx, "held-out evaluation")
	initial := st.Nodes[st.InitialBest]
	ids := []int{winner.ID}
	if initial.ID != winner.ID {
		ids = append(ids, initial.ID)
	}
	scores := map[int]float64{}
	var evalErr error
	r.parallel(ctx, ids, func(ctx workflow.Context, id int) {
		out, err := r.evaluate(ctx, st.Nodes[id].Ref, SplitTest, fmt.Sprintf("#%d", id))
		if err != nil {
			evalErr = errors.Join(evalErr, fmt.Errorf("held-out evaluation of #%d: %w", id, err))
			return
		}
		scores[id] = out.Fitness
	})
	if evalErr != nil {
		return nil, evalErr
	}
	res.HeldOut = HeldOut{Winner: scores[winner.ID], InitialBest: scores[initial.ID], InitialID: initial.ID}
	res.HeldOut.Beat = res.HeldOut.Winner > res.HeldOut.InitialBest
	res.TrainTokens, res.ScoredTokens, res.HeldOutTokens = st.TrainTokens, st.ScoredTokens, st.HeldOutTokens
	r.setPhase(ctx, "writing the report")
	res.Report = writeReport(ctx, r, WriteReportInput{Run: res, Lineage: st.Nodes}, "run "+cfg.Name)
	r.reportLink = res.Report
	r.setPhase(ctx, "done: "+reason)
	return res, nil
}

func isErrType(err error, typ string) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.Type() == typ
}

// errMessage is the innermost useful message of an activity error (the
// activity's own words, not the SDK's wrapping).
func errMessage(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		if app.Type() != "" {
			return app.Type() + ": " + app.Message()
		}
		return app.Message()
	}
	var to *temporal.TimeoutError
	if errors.As(err, &to) {
		return "timeout: " + to.Error()
	}
	msg := err.Error()
	return strings.TrimSpace(msg[:min(len(msg), 500)])
}
