package fpnet

import "github.com/seed8b67a5e0/underflow/fpnet/detmath"

// SoftmaxCrossEntropy returns the mean cross-entropy of batch rows of logits
// (batch×classes) against labels, and how many rows' arg-max is the label.
// It computes in float64 with deterministic exp and log and a fixed order,
// so it gives the same bits on every platform.
func SoftmaxCrossEntropy(logits []float32, labels []uint8, batch, classes int) (meanLoss float64, correct int) {
	return softmaxCE(logits, labels, batch, classes, nil, 0)
}

// SoftmaxCrossEntropyGrad is SoftmaxCrossEntropy that also writes the
// gradient of the mean loss with respect to the logits,
// (softmax − onehot)/batch, to grad (batch×classes).
func SoftmaxCrossEntropyGrad(logits []float32, labels []uint8, batch, classes int, grad []float32) (meanLoss float64, correct int) {
	return softmaxCE(logits, labels, batch, classes, grad[:batch*classes], 0)
}

// SmoothedSoftmaxCrossEntropyGrad is SoftmaxCrossEntropyGrad with label
// smoothing ε: the gradient is that of the cross-entropy against
// (1−ε)·onehot + ε/classes, (softmax − target)/batch; the loss returned
// stays the plain cross-entropy. ε = 0 is SoftmaxCrossEntropyGrad.
func SmoothedSoftmaxCrossEntropyGrad(logits []float32, labels []uint8, batch, classes int, smoothing float32, grad []float32) (meanLoss float64, correct int) {
	return softmaxCE(logits, labels, batch, classes, grad[:batch*classes], smoothing)
}

func softmaxCE(logits []float32, labels []uint8, batch, classes int, grad []float32, smoothing float32) (float64, int) {
	if batch == 0 {
		return 0, 0
	}
	total := 0.0
	correct := 0
	inv := 1 / float64(batch)
	for r := 0; r < batch; r++ {
		row := logits[r*classes : r*classes+classes]
		y := int(labels[r])
		best := argmax(row)
		if best == y {
			correct++
		}
		m := float64(row[best])
		sum := 0.0
		for _, v := range row {
			sum += detmath.Exp(float64(v) - m)
		}
		total += detmath.Log(sum) - (float64(row[y]) - m)
		if grad != nil {
			g := grad[r*classes : r*classes+classes]
			off := float64(smoothing) / float64(classes)
			for j, v := range row {
				p := detmath.Exp(float64(v)-m) / sum
				if smoothing != 0 {
					p -= off
					if j == y {
						p -= 1 - float64(smoothing)
					}
				} else if j == y {
					p -= 1
				}
				g[j] = float32(p * inv)
			}
		}
	}
	return total * inv, correct
}
