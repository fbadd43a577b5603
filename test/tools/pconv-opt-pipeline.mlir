// Mixed pipelines: pconv passes beside upstream ones, stdin input, -o output, IR after all.
// RUN: pconv-opt %s -p "pconv-raise-pattern-conv,canonicalize,cse" | filecheck %s
// RUN: cat %s | pconv-opt -p "func.func(canonicalize)" -o %t && filecheck %s --check-prefix=OUT < %t
// RUN: pconv-opt %s -p "pconv-raise-pattern-conv,cse" --mlir-print-ir-after-all 2>&1 >/dev/null | filecheck %s --check-prefix=DUMP

// CHECK-LABEL: func.func @two_identical_adds
// CHECK: arith.addf
// CHECK-NOT: arith.addf
// OUT-LABEL: func.func @two_identical_adds
// DUMP: IR Dump After RaisePatternConv: pconv-raise-pattern-conv
// DUMP: IR Dump After CSE
func.func @two_identical_adds(%a: f32) -> (f32, f32) {
  %0 = arith.addf %a, %a : f32
  %1 = arith.addf %a, %a : f32
  return %0, %1 : f32, f32
}

// The compile pipeline by name: what `pconv compile` runs (pconv_mlir.mlir.pipeline), here on a
// function with no convolutions (the passes' own lit tests cover convolutions).
// RUN: pconv-opt %s -p "pconv-pipeline{layout=nhwc},pconv-cleanup" | filecheck %s --check-prefix=NAMED
// RUN: pconv-opt %s -p "pconv-pipeline,pconv-cleanup{own-dense-convs=true}" | filecheck %s --check-prefix=NAMED
// NAMED-LABEL: func.func @two_identical_adds
// NAMED: arith.addf
// NAMED-NOT: arith.addf
