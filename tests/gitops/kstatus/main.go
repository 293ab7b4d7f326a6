// Command kstatus prints the kstatus (sigs.k8s.io/cli-utils) verdict on one Kubernetes object:
// the computation Flux's health checks and `kubectl wait`-style tooling use. It reads the object
// as JSON on stdin and prints {"status": ..., "message": ..., "conditions": [...]} on stdout.
// Built and cached by devcluster/build.py; run by tests/unit/gitops/test_health.py.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Status     string   `json:"status"`
	Message    string   `json:"message"`
	Conditions []string `json:"conditions"`
}

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: reading stdin:", err)
		os.Exit(2)
	}
	var obj unstructured.Unstructured
	if err := obj.UnmarshalJSON(data); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: stdin is not a Kubernetes object:", err)
		os.Exit(2)
	}
	result, err := status.Compute(&obj)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: compute:", err)
		os.Exit(1)
	}
	out := verdict{Status: result.Status.String(), Message: result.Message, Conditions: []string{}}
	for _, c := range result.Conditions {
		out.Conditions = append(out.Conditions, fmt.Sprintf("%s=%s", c.Type, c.Status))
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: writing stdout:", err)
		os.Exit(1)
	}
}
