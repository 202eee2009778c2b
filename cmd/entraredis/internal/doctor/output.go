package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

var statusLabel = map[Status]string{
	StatusOK:      "  ok  ",
	StatusWarn:    " warn ",
	StatusFailed:  "FAILED",
	StatusSkipped: " skip ",
}

// WriteText prints the report for people: one line per step with its status
// and timing, then the cause and the fix of a failure or a warning.
func WriteText(w io.Writer, rep *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "entraredis doctor: %s:%d\n", rep.Host, rep.Port)
	for _, s := range rep.Steps {
		dur := ""
		if s.Status != StatusSkipped {
			dur = fmt.Sprintf("%8.1fms", s.DurationMS)
		}
		fmt.Fprintf(&b, "[%s] %-10s %10s  %s\n", statusLabel[s.Status], s.Name, dur, s.Detail)
		writeIndented(&b, "cause: ", s.Cause)
		writeIndented(&b, "fix:   ", s.Fix)
	}
	failed, warned := 0, 0
	for _, s := range rep.Steps {
		switch s.Status {
		case StatusFailed:
			failed++
		case StatusWarn:
			warned++
		}
	}
	switch {
	case failed > 0:
		fmt.Fprintf(&b, "result: FAILED (%d failed, %d warnings)\n", failed, warned)
	default:
		fmt.Fprintf(&b, "result: ok (%d warnings)", warned)
		if rep.Client != "" {
			fmt.Fprintf(&b, "; use %s", rep.Client)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON prints the report as indented JSON.
func WriteJSON(w io.Writer, rep *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(rep)
}

// writeIndented writes a labelled, possibly multi-line text under a step line.
func writeIndented(b *strings.Builder, label, text string) {
	if text == "" {
		return
	}
	pad := strings.Repeat(" ", 24)
	for i, line := range strings.Split(text, "\n") {
		if i == 0 {
			fmt.Fprintf(b, "%s %s%s\n", pad, label, line)
		} else {
			fmt.Fprintf(b, "%s %s  %s\n", pad, strings.Repeat(" ", len(label)), line)
		}
	}
}
