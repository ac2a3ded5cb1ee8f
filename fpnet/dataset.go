package fpnet

// Dataset is a set of images with labels: Images holds N rows of Dim
// values in [0, 1] (pixel/255), Labels the N classes.
type Dataset struct {
	Images     []float32
	Labels     []uint8
	N, Dim     int
	Rows, Cols int // image shape, Rows·Cols = Dim
}

// Subset returns the first n examples (sharing storage).
func (d *Dataset) Subset(n int) *Dataset {
	n = min(n, d.N)
	s := *d
	s.N = n
	s.Images = d.Images[:n*d.Dim]
	s.Labels = d.Labels[:n]
	return &s
}
