package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"
)

// The compute budget (budgets.tokens): training tokens plus tokens scored on
// the dev split, as the activities count them. The workflow enforces it
// child by child, not by generation counts: before a child pipeline starts
// it reserves the child's estimated cost (its fine-tune at the most tokens
// per step seen so far, its evaluation at the most a dev evaluation has
// cost), and starts only if spent + reserved + estimate fits.
//
// At the edge of the budget (budgetPerActivity, version 1) a child that does
// not fit waits until nothing else is in flight and is then planned against
// the exact spend, activity by activity:
//   - left < one evaluation: the child is not made, and the run ends;
//   - its fine-tune does not fit whole: the fine-tune is cut to the steps
//     that fit beside the evaluation; where not one step fits, a merged child
//     goes on without its fine-tune and a fine-tune-only child gets one step;
//   - a fine-tune that cost more than its reservation (the first fine-tune of
//     a run, whose cost nobody knows yet) and left the budget spent is not
//     followed by an evaluation.
// So a run ends with less than one evaluation's cost of the budget unspent,
// and over it by at most one fine-tune step (the one-step child), or, when
// an activity cost more than estimated, by less than that one activity's
// cost (exact with parallelism 1; with more, the estimates of the children
// already in flight must hold). Version DefaultVersion is the older gate
// (a whole child reserved, under by up to one child's cost), kept for the
// histories of runs that started with it.

// CostEstimates are what the budget gate has learned; carried through
// continue-as-new.
type CostEstimates struct {
	// Eval is the most tokens one dev evaluation has scored.
	Eval int64 `json:"eval,omitempty"`
	// TrainPerStep is the most training tokens per fine-tune step seen
	// (rounded up); 0 until a fine-tune has run.
	TrainPerStep int64 `json:"train_per_step,omitempty"`
}

// ledger is the budget's in-flight bookkeeping (one generation's worth; it
// is empty between generations, so it is not carried).
type ledger struct {
	reserved  int64
	inflight  int
	exclusive bool // a child of unknown cost is running alone
	skipped   int  // children of this execution the budget could not cover
}

// versionBudget: from version 1 on, the budget is planned activity by
// activity at its edge (see above).
const versionBudget = "budget-per-activity"

// reservation is one child's share of the ledger, released part by part as
// its activities report their real cost.
type reservation struct{ train, eval int64 }

func (r *run) budgeted() bool { return r.cfg.Budgets.Tokens > 0 }

func (r *run) spent() int64 { return r.st.TrainTokens + r.st.ScoredTokens }

func (r *run) costs() CostEstimates {
	if r.st.Costs == nil {
		return CostEstimates{}
	}
	return *r.st.Costs
}

// estimate is a child's cost; known is false while no fine-tune has been
// seen and the child has one.
func (r *run) estimate(p ChildPlan) (reservation, bool) {
	c := r.costs()
	res := reservation{eval: c.Eval}
	if p.FineTune == nil {
		return res, true
	}
	res.train = c.TrainPerStep * int64(p.FineTune.Steps)
	return res, c.TrainPerStep > 0
}

// reserve blocks until the child may start and says whether it fits. The
// estimate is taken again at every check: a child waiting for the first
// fine-tune to finish must use the cost that fine-tune revealed. At the
// edge (version 1) it may cut or drop the child's fine-tune (p changes).
func (r *run) reserve(ctx workflow.Context, p *ChildPlan) (reservation, bool) {
	b := r.cfg.Budgets.Tokens
	fits := func(est reservation) bool { return r.spent()+r.ledger.reserved+est.train+est.eval <= b }
	if err := workflow.Await(ctx, func() bool {
		est, known := r.estimate(*p)
		return r.ledger.inflight == 0 || (known && !r.ledger.exclusive && fits(est))
	}); err != nil {
		return reservation{}, false
	}
	est, known := r.estimate(*p)
	if r.budgetV >= 1 && r.ledger.inflight == 0 && !(known && fits(est)) {
		if !r.fitToBudget(p) {
			r.ledger.skipped++
			return reservation{}, false
		}
		est, known = r.estimate(*p)
	} else if !fits(est) {
		r.ledger.skipped++
		return reservation{}, false
	}
	r.ledger.reserved += est.train + est.eval
	r.ledger.inflight++
	r.ledger.exclusive = !known
	return est, true
}

// fitToBudget plans the child alone at the budget's edge against the exact
// spend: false when not even its evaluation fits; otherwise its fine-tune is
// cut to the steps that fit (a merged child without one where none does, a
// fine-tune-only child one step). A fine-tune of unknown cost runs whole.
func (r *run) fitToBudget(p *ChildPlan) bool {
	c := r.costs()
	left := r.cfg.Budgets.Tokens - r.spent()
	if left < max(c.Eval, 1) {
		return false
	}
	if p.FineTune == nil || c.TrainPerStep == 0 {
		return true
	}
	steps := int((left - c.Eval) / c.TrainPerStep)
	if steps >= p.FineTune.Steps {
		return true
	}
	if steps < 1 && p.Genome.Method != "" {
		p.FineTune, p.TuneLabel = nil, ""
		return true
	}
	ft := *p.FineTune
	ft.Steps = max(steps, 1)
	p.FineTune, p.TuneLabel = &ft, FineTuneLabel(ft)
	return true
}

// spentByFineTune says, after a fine-tune that cost more than its
// reservation, whether the budget is spent, so its evaluation must not run.
func (r *run) spentByFineTune(res reservation, cost int64) bool {
	if r.budgetV < 1 || cost <= res.train {
		return false
	}
	others := r.ledger.reserved - res.train - res.eval
	return r.spent()+others >= r.cfg.Budgets.Tokens
}

func (r *run) releaseTrain(res *reservation) { r.ledger.reserved -= res.train; res.train = 0 }
func (r *run) releaseEval(res *reservation)  { r.ledger.reserved -= res.eval; res.eval = 0 }

func (r *run) done(res *reservation) {
	r.releaseTrain(res)
	r.releaseEval(res)
	r.ledger.inflight--
	r.ledger.exclusive = false
}

func (r *run) observeEval(tokens int64) {
	if !r.budgeted() {
		return
	}
	c := r.costs()
	c.Eval = max(c.Eval, tokens)
	r.st.Costs = &c
}

func (r *run) observeTrain(tokens int64, steps int) {
	if steps < 1 || !r.budgeted() {
		return
	}
	c := r.costs()
	c.TrainPerStep = max(c.TrainPerStep, (tokens+int64(steps)-1)/int64(steps))
	r.st.Costs = &c
}

// minChildCost is the least a child of this mode can cost (version 1: one
// evaluation, as a child at the edge may have its fine-tune cut).
func (r *run) minChildCost() int64 {
	c := r.costs()
	if r.budgetV >= 1 {
		return max(c.Eval, 1)
	}
	if r.cfg.mode() == ModeFineTuneOnly {
		return c.Eval + c.TrainPerStep*int64(r.cfg.Mutation.Steps.Min)
	}
	return c.Eval
}

// budgetReason is why the budget ends the run, or "".
func (r *run) budgetReason() string {
	if !r.budgeted() {
		return ""
	}
	b := r.cfg.Budgets.Tokens
	if r.ledger.skipped > 0 || r.spent()+r.minChildCost() > b {
		return fmt.Sprintf("compute budget %d tokens reached (%d used: %d trained, %d scored)", b, r.spent(), r.st.TrainTokens, r.st.ScoredTokens)
	}
	return ""
}

// validateBudget rejects a budget that cannot pay for generation 0 and one
// generation: every item scores at least one token, so the dev evaluations of
// generation 0 and of one generation's children cost at least
// (population + children) x items.
func (c RunConfig) validateBudget(p *problems) {
	if c.Budgets.Tokens < 0 {
		p.bad("budgets.tokens", "must not be negative, got %d", c.Budgets.Tokens)
		return
	}
	if c.Budgets.Tokens == 0 {
		return
	}
	items := int64(0)
	for _, t := range c.Fitness.Dev {
		items += int64(t.N)
	}
	if least := int64(c.Population+c.Children) * items; c.Budgets.Tokens < least {
		p.bad("budgets.tokens", "%d is too small for one generation: scoring generation 0 (%d models) and one generation (%d children) on %d dev items each costs at least %d tokens",
			c.Budgets.Tokens, c.Population, c.Children, items, least)
	}
}
