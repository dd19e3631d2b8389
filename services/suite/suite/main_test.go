package suite_test

import (
	"testing"

	"github.com/certflow/certflow/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
