// compose-check validates docker-compose.yml with compose-go, the loader Docker Compose itself
// uses: YAML syntax, the Compose specification's schema, interpolation and cross-references
// (depends_on targets, volumes, networks). It needs no Docker engine.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: compose-check path/to/docker-compose.yml")
		os.Exit(2)
	}
	path, err := filepath.Abs(os.Args[1])
	if err != nil {
		fail(err)
	}
	opts, err := cli.NewProjectOptions(
		[]string{path},
		cli.WithWorkingDirectory(filepath.Dir(path)),
		cli.WithName("dakoku"),
		cli.WithOsEnv,
		cli.WithDotEnv,
	)
	if err != nil {
		fail(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	for _, svc := range project.Services {
		if svc.Image == "" && svc.Build == nil {
			fail(fmt.Errorf("service %q has neither image nor build", svc.Name))
		}
	}
	fmt.Printf("%s: valid Compose file, %d services: %v\n", os.Args[1], len(project.Services), project.ServiceNames())
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "compose-check: %v\n", err)
	os.Exit(1)
}
