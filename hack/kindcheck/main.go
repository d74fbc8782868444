// kindcheck: is a kind cluster config one that kind itself accepts? Runs kind's own
// `Provider.Create` (sigs.k8s.io/kind/pkg/cluster, the public API `kind create cluster` uses) with
// a stand-in `docker` on PATH, because kind's config loader (strict decoding, defaults,
// conversion) and its validation are internal packages that only Create reaches. The stand-in
// answers the two questions kind asks before loading and validating the config (`docker info`:
// a cgroup v2 engine; `docker ps`: no such cluster yet) and refuses every other command. So kind
// either rejects the config (its error is printed, exit 1) or accepts it and starts to provision
// (its first provisioning command is printed, exit 0). Nothing is created.
//
//	go run . CONFIG.yaml
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kind/pkg/cluster"
	kindlog "sigs.k8s.io/kind/pkg/log"
)

const standIn = `#!/bin/sh
echo "$*" >> "$KINDCHECK_CALLS"
case "$1" in
  info) echo '{"CgroupDriver":"systemd","CgroupVersion":"2","MemoryLimit":true,"PidsLimit":true,"CPUShares":true,"SecurityOptions":["name=seccomp,profile=builtin"]}' ;;
  ps) ;;
  *) echo "kindcheck: stand-in docker refuses: $*" >&2; exit 1 ;;
esac
`

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: kindcheck CONFIG.yaml")
		os.Exit(2)
	}
	os.Exit(check(os.Args[1]))
}

func check(config string) int {
	dir, err := os.MkdirTemp("", "kindcheck")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer os.RemoveAll(dir)
	calls := filepath.Join(dir, "calls")
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(standIn), 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	os.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	os.Setenv("KINDCHECK_CALLS", calls)

	provider := cluster.NewProvider(cluster.ProviderWithDocker(), cluster.ProviderWithLogger(kindlog.NoopLogger{}))
	// Retain: on failure kind would otherwise try to delete what it made (nothing), via docker.
	createErr := provider.Create("", cluster.CreateWithConfigFile(config), cluster.CreateWithRetain(true))
	raw, _ := os.ReadFile(calls)
	var provisioning []string
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if line != "" && !strings.HasPrefix(line, "info ") && !strings.HasPrefix(line, "ps ") {
			provisioning = append(provisioning, line)
		}
	}
	if createErr == nil {
		fmt.Fprintln(os.Stderr, "kindcheck: kind created a cluster with a stand-in docker; this cannot happen")
		return 2
	}
	if len(provisioning) == 0 {
		fmt.Printf("REJECTED %s: %v\n", config, createErr)
		return 1
	}
	fmt.Printf("ACCEPTED %s: kind loaded and validated it, then began to provision (docker %s)\n", config,
		provisioning[0])
	return 0
}
