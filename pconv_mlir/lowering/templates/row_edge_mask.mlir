    %k32 = tensor.extract %tkx[%b, %r] : ${tab_type}
    %k = arith.index_cast %k32 : i32 to index
    %mk = tensor.extract %cmask[%k, %q] : ${mask_type}
    %inrow = arith.cmpi ne, %mk, %z32 : i32
    %v1 = arith.select %inrow, %v0, %zero : f32
