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
// cost), and starts only if spent + reserved + estimate fits. A child that
// does not fit waits until nothing else is in flight and tries once more
// against the exact spend, so the run ends with less than one child's cost
// of the budget left, and over it only by what an estimate missed.

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
// fine-tune to finish must use the cost that fine-tune revealed.
func (r *run) reserve(ctx workflow.Context, p ChildPlan) (reservation, bool) {
	b := r.cfg.Budgets.Tokens
	fits := func(est reservation) bool { return r.spent()+r.ledger.reserved+est.train+est.eval <= b }
	if err := workflow.Await(ctx, func() bool {
		est, known := r.estimate(p)
		return r.ledger.inflight == 0 || (known && !r.ledger.exclusive && fits(est))
	}); err != nil {
		return reservation{}, false
	}
	est, known := r.estimate(p)
	if !fits(est) {
		r.ledger.skipped++
		return reservation{}, false
	}
	r.ledger.reserved += est.train + est.eval
	r.ledger.inflight++
	r.ledger.exclusive = !known
	return est, true
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

// minChildCost is the least a child of this mode can cost.
func (r *run) minChildCost() int64 {
	c := r.costs()
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
