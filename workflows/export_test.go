package workflows

// For the external tests (experiment_crash_test.go), which need the dev
// server (infra/devserver imports this package): the fake activities and
// the in-process experiment run.

type FakeWorld = fakeWorld

func NewFakeWorld() *FakeWorld { return newFakeWorld() }

func (w *fakeWorld) Register(r activityRegistry) { w.register(r) }

func (w *fakeWorld) Count(name string) int { return w.count(name) }

var TestExperimentConfig = testExperiment

var RunExperimentInTestEnv = runExperiment

// UseRealReports leaves WriteReport to the test (the real activity).
func (w *fakeWorld) UseRealReports() { w.realReports = true }
