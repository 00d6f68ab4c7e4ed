package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/evomerge/evomerge/workflows"
)

func cmdSchedule(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: schedule needs create, list, delete or trigger", errUsage)
	}
	switch args[0] {
	case "create":
		return scheduleCreate(ctx, args[1:], stdout, stderr)
	case "list":
		return scheduleList(ctx, args[1:], stdout, stderr)
	case "delete":
		return scheduleDelete(ctx, args[1:], stdout, stderr)
	case "trigger":
		return scheduleTrigger(ctx, args[1:], stdout, stderr)
	default:
		return fmt.Errorf("%w: unknown schedule command %q (want create, list, delete or trigger)", errUsage, args[0])
	}
}

// scheduleAction is what every firing of the schedule starts: the run config
// continuing its lineage, so each run starts from the last population the
// previous run published (the first run falls back to init.models/demo).
func scheduleAction(cfg workflows.RunConfig, fresh bool) (workflows.RunConfig, *client.ScheduleWorkflowAction, error) {
	if !fresh {
		cfg.Init.ContinueLineage = cfg.Lineage
	}
	cfg, err := workflows.Prepare(cfg)
	if err != nil {
		return cfg, nil, err
	}
	return cfg, &client.ScheduleWorkflowAction{
		// The server appends the scheduled time, so every firing has its own ID.
		ID:        "evo-" + cfg.Name,
		Workflow:  workflows.WorkflowEvolution,
		Args:      []any{workflows.EvolutionInput{RunConfig: cfg}},
		TaskQueue: cfg.TaskQueues.CPU,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SearchRun.ValueSet(cfg.Name)),
	}, nil
}

func scheduleSpec(cron string, every time.Duration) (client.ScheduleSpec, error) {
	switch {
	case cron != "" && every != 0:
		return client.ScheduleSpec{}, fmt.Errorf("%w: give --cron or --every, not both", errUsage)
	case cron != "":
		if len(strings.Fields(cron)) != 5 && !strings.HasPrefix(cron, "@") {
			return client.ScheduleSpec{}, fmt.Errorf("--cron %q: want 5 fields (minute hour day month weekday) or @daily/@hourly", cron)
		}
		return client.ScheduleSpec{CronExpressions: []string{cron}}, nil
	case every > 0:
		if every < time.Minute {
			return client.ScheduleSpec{}, fmt.Errorf("--every %s: must be at least 1m", every)
		}
		return client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}}, nil
	default:
		return client.ScheduleSpec{}, fmt.Errorf("%w: schedule create needs --cron (e.g. \"0 2 * * *\" nightly) or --every", errUsage)
	}
}

func scheduleCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("schedule create", stderr)
	var cf clientFlags
	cf.register(fs)
	var sf storeFlags
	sf.register(fs)
	file := fs.String("f", "", "run config file (JSON or YAML)")
	id := fs.String("id", "", "schedule ID (default <name>-schedule)")
	cron := fs.String("cron", "", `cron expression, e.g. "0 2 * * *" for nightly at 02:00 UTC`)
	every := fs.Duration("every", 0, "interval instead of cron, e.g. 24h")
	fresh := fs.Bool("fresh", false, "start every run from init.models/demo instead of continuing the lineage")
	paused := fs.Bool("paused", false, "create the schedule paused")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *file == "" || len(pos) > 0 {
		return fmt.Errorf("%w: schedule create needs -f run.json|run.yaml", errUsage)
	}
	spec, err := scheduleSpec(*cron, *every)
	if err != nil {
		return err
	}
	cfg, err := loadRunConfig(*file)
	if err != nil {
		return err
	}
	// Every firing reads the same uploaded bytes.
	if cfg, err = uploadData(ctx, sf.open, cfg); err != nil {
		return fmt.Errorf("%s: %w", *file, err)
	}
	cfg, action, err := scheduleAction(cfg, *fresh)
	if err != nil {
		return err
	}
	sid := *id
	if sid == "" {
		sid = cfg.Name + "-schedule"
	}
	c, err := cf.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:      sid,
		Spec:    spec,
		Action:  action,
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, // a run still going makes the next firing skip
		Paused:  *paused,
		Note:    "evomerge lineage " + cfg.Lineage,
	})
	if err != nil {
		return fmt.Errorf("create schedule %s: %w", sid, err)
	}
	fmt.Fprintf(stdout, "schedule %s created: runs %s continuing lineage %q; overlapping runs are skipped\n", sid, describeSpec(spec), cfg.Lineage)
	return nil
}

func describeSpec(s client.ScheduleSpec) string {
	var parts []string
	for _, c := range s.CronExpressions {
		parts = append(parts, "cron "+c)
	}
	for _, i := range s.Intervals {
		parts = append(parts, "every "+i.Every.String())
	}
	for _, c := range s.Calendars {
		parts = append(parts, fmt.Sprintf("calendar %v", c.Comment))
	}
	if len(parts) == 0 {
		return "(no spec)"
	}
	return strings.Join(parts, ", ")
}

func scheduleList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("schedule list", stderr)
	var cf clientFlags
	cf.register(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: schedule list takes no arguments", errUsage)
	}
	c, err := cf.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	it, err := c.ScheduleClient().List(ctx, client.ScheduleListOptions{PageSize: 100})
	if err != nil {
		return fmt.Errorf("list schedules: %w", err)
	}
	n := 0
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return fmt.Errorf("list schedules: %w", err)
		}
		n++
		spec := "(spec not listed)"
		if e.Spec != nil {
			spec = describeSpec(*e.Spec)
		}
		state := "active"
		if e.Paused {
			state = "paused"
		}
		next := "-"
		if len(e.NextActionTimes) > 0 {
			next = e.NextActionTimes[0].UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(stdout, "%-30s %-8s %-25s next %s  workflow %s  %s\n", e.ID, state, spec, next, e.WorkflowType.Name, e.Note)
	}
	if n == 0 {
		fmt.Fprintln(stdout, "no schedules")
	}
	return nil
}

func scheduleDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("schedule delete", stderr)
	return withIDClient(ctx, fs, nil, args, "schedule id", func(c client.Client, id string) error {
		if err := c.ScheduleClient().GetHandle(ctx, id).Delete(ctx); err != nil {
			return fmt.Errorf("delete schedule %s: %w", id, err)
		}
		fmt.Fprintf(stdout, "schedule %s deleted (runs it started go on)\n", id)
		return nil
	})
}

func scheduleTrigger(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("schedule trigger", stderr)
	return withIDClient(ctx, fs, nil, args, "schedule id", func(c client.Client, id string) error {
		err := c.ScheduleClient().GetHandle(ctx, id).Trigger(ctx, client.ScheduleTriggerOptions{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP})
		if err != nil {
			return fmt.Errorf("trigger schedule %s: %w", id, err)
		}
		fmt.Fprintf(stdout, "schedule %s triggered now\n", id)
		return nil
	})
}
