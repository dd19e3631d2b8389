package app

// SetTestHook has the use cases call f at their race points (see hook);
// nil removes it. Set it before the service starts.
func SetTestHook(f func(point string)) { testHook = f }
