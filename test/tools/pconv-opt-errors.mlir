// Bad input and bad pipelines: a located diagnostic, exit code 1, never a traceback.
// RUN: not pconv-opt %s 2>&1 | filecheck %s --check-prefix=PARSE
// RUN: not pconv-opt %s -p pconv-no-such-pass 2>&1 | filecheck %s --check-prefix=UNKNOWN
// RUN: not pconv-opt %s -p "pconv-raise-pattern-conv{bogus=1}" 2>&1 | filecheck %s --check-prefix=OPTION
// RUN: not pconv-opt %s -p "no-such-upstream-pass" 2>&1 | filecheck %s --check-prefix=UPSTREAM
// RUN: not pconv-opt %t.does-not-exist 2>&1 | filecheck %s --check-prefix=MISSING

// PARSE: pconv-opt-errors.mlir:12:{{[0-9]+}}: error:
// PARSE-NOT: Traceback
// UNKNOWN: unknown pass 'pconv-no-such-pass'
func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = "not.closed"(%x : tensor<4xf32>
  return %y : tensor<4xf32>
}
// OPTION: pass 'pconv-raise-pattern-conv' has no option 'bogus'
// UPSTREAM: invalid pipeline element 'no-such-upstream-pass'
// MISSING: cannot read
