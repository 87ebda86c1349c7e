package cache

// WithAfterRevalidate returns o calling f when a background reread ends.
func WithAfterRevalidate(o Options, f func()) Options {
	o.afterRevalidate = f
	return o
}
