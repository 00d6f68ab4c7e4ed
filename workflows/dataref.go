package workflows

import (
	"fmt"
	"regexp"
	"strings"
)

// Data references: where a task's data or a mutation dataset comes from. The
// starter turns every local path, file:// and s3:// reference into a
// store:<sha256> reference (uploading the bytes) before a run starts, so the
// workflow input names data by content; `temporal workflow start` may give
// store: references directly (or file:// and s3:// ones, which the worker
// imports into the store on first use).

// StorePrefix starts a data reference to a store object.
const StorePrefix = "store:"

var storeRefRE = regexp.MustCompile(`^store:[0-9a-f]{64}$`)

// IsStoreRef reports whether ref is a well-formed store:<sha256> reference.
func IsStoreRef(ref string) bool { return storeRefRE.MatchString(ref) }

// StoreRef is the store: reference of a hex sha256 digest.
func StoreRef(hex string) string { return StorePrefix + hex }

// CheckDataRef says what is wrong with a data reference's form, or "".
func CheckDataRef(ref string) string {
	switch {
	case strings.TrimSpace(ref) == "":
		return "must not be empty"
	case strings.HasPrefix(ref, StorePrefix):
		if !IsStoreRef(ref) {
			return fmt.Sprintf("%q: a store reference is store: followed by the 64 lowercase hex digits of the data's sha256", ref)
		}
	case strings.HasPrefix(ref, "s3://"):
		if len(strings.Trim(strings.TrimPrefix(ref, "s3://"), "/")) == 0 || !strings.Contains(strings.TrimPrefix(ref, "s3://"), "/") {
			return fmt.Sprintf("%q: want s3://bucket/key", ref)
		}
	case strings.HasPrefix(ref, "file://"):
		if strings.TrimPrefix(ref, "file://") == "" {
			return fmt.Sprintf("%q names no file", ref)
		}
	case strings.Contains(ref, "://"):
		return fmt.Sprintf("%q: want a path, file://, s3:// or store:<sha256>", ref)
	}
	return ""
}

// DataRefs calls fn with a pointer to every data reference of the config and
// its field name (fitness.dev[i].path, mutation.datasets[j].path, ...), so
// the starter can replace them by store references. Empty ones are skipped.
func (c *RunConfig) DataRefs(fn func(field string, ref *string) error) error {
	for _, l := range []struct {
		name  string
		tasks []TaskSpec
	}{{"fitness.dev", c.Fitness.Dev}, {"fitness.test", c.Fitness.Test}} {
		for i := range l.tasks {
			t := &l.tasks[i]
			if t.Path != "" {
				if err := fn(fmt.Sprintf("%s[%d].path", l.name, i), &t.Path); err != nil {
					return err
				}
			}
			if t.FewshotPath != "" {
				if err := fn(fmt.Sprintf("%s[%d].fewshot_path", l.name, i), &t.FewshotPath); err != nil {
					return err
				}
			}
		}
	}
	for i := range c.Mutation.Datasets {
		d := &c.Mutation.Datasets[i]
		if d.Path != "" {
			if err := fn(fmt.Sprintf("mutation.datasets[%d].path", i), &d.Path); err != nil {
				return err
			}
		}
	}
	return nil
}
