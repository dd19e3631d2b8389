// Command certflow is the customer's command line over certflow's JSON API.
package main

import "github.com/certflow/certflow/services/cli/internal/cli"

func main() { cli.Main() }
