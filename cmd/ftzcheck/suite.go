package main

import (
	"math"

	"github.com/seed8b67a5e0/underflow/cmd/ftzcheck/internal/vectorfile"
	"github.com/seed8b67a5e0/underflow/kernels"
	"github.com/seed8b67a5e0/underflow/kernels/probe"
)

// buildSuite returns the built-in suite for envs, results not yet filled in:
// for every environment and operation, the contract's edge cases (each in
// both operand orders and with both signs of c and of a), then perOp
// generated cases, a third a deterministic sample of TestFloat's level-1 set
// and two thirds weighted random cases aimed partly at ±2^-126.
func buildSuite(envs []kernels.Env, perOp int) []vectorfile.Case {
	var cases []vectorfile.Case
	add := func(env kernels.Env, op probe.Op, x probe.Triple) {
		c := vectorfile.Case{Env: env, Op: op, A: math.Float32bits(x.A), B: math.Float32bits(x.B)}
		if op.Operands() == 3 {
			c.C = math.Float32bits(x.C)
		}
		cases = append(cases, c)
	}
	// The generated operands depend on the op only: make them once.
	generated := make([][]probe.Triple, len(probe.Ops))
	for i, op := range probe.Ops {
		level1 := perOp / 3
		if level1 > 0 {
			// Whole pattern combinations (9 or 6 cases each), evenly spread.
			per := 6
			if op.Operands() == 3 {
				per = 9
			}
			combos := probe.TestFloatLevel1Count(op.Operands()) / per
			stride := max(1, combos/max(1, level1/per))
			for x := range probe.TestFloatLevel1Sample(op.Operands(), uint64(11+i), stride) {
				generated[i] = append(generated[i], x)
			}
			level1 = len(generated[i])
		}
		for x := range probe.RandomCases(max(0, perOp-level1), uint64(101+i)) {
			generated[i] = append(generated[i], x)
		}
	}
	for _, env := range envs {
		for i, op := range probe.Ops {
			seen := map[vectorfile.Case]bool{} // edge variants repeat; keep one of each
			for _, e := range probe.EdgeCases() {
				x := e.Triple()
				for _, t := range []probe.Triple{x, {A: x.B, B: x.A, C: x.C}, {A: x.A, B: x.B, C: -x.C}, {A: -x.A, B: x.B, C: x.C}} {
					if op.Operands() == 2 && math.Float32bits(t.C) != math.Float32bits(x.C) {
						continue // c does not matter to a two-operand op
					}
					add(env, op, t)
					if last := cases[len(cases)-1]; seen[last] {
						cases = cases[:len(cases)-1]
					} else {
						seen[last] = true
					}
				}
			}
			for _, x := range generated[i] {
				add(env, op, x)
			}
		}
	}
	return cases
}

// hardwareResults runs every case the unit can run (its environment honoured
// by this CPU, its op on the unit) and returns the results; ran[i] is false
// for the others.
func hardwareResults(u probe.Unit, cases []vectorfile.Case) (res []uint32, ran []bool, err error) {
	res, ran = make([]uint32, len(cases)), make([]bool, len(cases))
	type key struct {
		env kernels.Env
		op  probe.Op
	}
	groups := map[key][]int{}
	var order []key
	for i, c := range cases {
		k := key{c.Env, c.Op}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	for _, k := range order {
		if !probe.HardwareHonours(k.env) || !u.Has(k.op) {
			continue
		}
		idx := groups[k]
		a, b, c, dst := make([]float32, len(idx)), make([]float32, len(idx)), make([]float32, len(idx)), make([]float32, len(idx))
		for j, i := range idx {
			a[j] = math.Float32frombits(cases[i].A)
			b[j] = math.Float32frombits(cases[i].B)
			c[j] = math.Float32frombits(cases[i].C)
		}
		if err := u.Run(k.env, k.op, dst, a, b, c); err != nil {
			return nil, nil, err
		}
		for j, i := range idx {
			res[i], ran[i] = math.Float32bits(dst[j]), true
		}
	}
	return res, ran, nil
}

// referenceResult evaluates a case with the exact reference.
func referenceResult(c vectorfile.Case) uint32 {
	return math.Float32bits(c.Op.Reference(c.Env, math.Float32frombits(c.A), math.Float32frombits(c.B), math.Float32frombits(c.C)))
}

// same compares two result bit patterns as the contract does (NaNs by class).
func same(x, y uint32) bool {
	return kernels.SameResult(math.Float32frombits(x), math.Float32frombits(y))
}
