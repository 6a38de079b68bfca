# cuBLAS, cuDNN and NCCL for the native CUDA build: where to look, and a
# configure line saying what was found and what was not.
#
# Looked for, in this order:
#   1. CUDNN_ROOT / NCCL_ROOT / CUBLAS_ROOT (CMake or environment variables):
#      a folder with lib/ (or lib64/) and include/;
#   2. the CUDA toolkit (/usr/local/cuda: lib64, include);
#   3. NVIDIA's Python wheels (nvidia-cudnn-cu13, nvidia-nccl-cu13, nvidia-cublas),
#      which ship only versioned names (libcudnn.so.9, no libcudnn.so):
#      site-packages/nvidia/{cudnn,nccl,cublas,cu13}/{lib,include}, found by
#      asking `python3 -c "import nvidia"` (PyTorch's environment has them).
# Sets CUDNN_LIB, CUDNN_INCLUDE_DIR, NCCL_LIB, NCCL_INCLUDE_DIR, CTGRAD_CUDA_LIB_DIRS
# (what a run needs on LD_LIBRARY_PATH: cuDNN 9 loads its engine libraries
# from there), and CUDA::cublas when the toolkit has none.

set(CTGRAD_WHEEL_ROOTS "")
find_program(CTGRAD_PYTHON3 python3)
if(CTGRAD_PYTHON3)
  execute_process(COMMAND ${CTGRAD_PYTHON3} -c "import nvidia; print(';'.join(nvidia.__path__))"
                  OUTPUT_VARIABLE CTGRAD_WHEEL_ROOTS OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET
                  TIMEOUT 20)
endif()

# ctgrad_cuda_hints(OUT_LIB OUT_INC ROOT_VAR SUBDIR...): lib and include hints for one library.
function(ctgrad_cuda_hints out_lib out_inc root_var)
  set(libs "")
  set(incs "")
  foreach(r "${${root_var}}" "$ENV{${root_var}}")
    if(r)
      list(APPEND libs "${r}/lib" "${r}/lib64")
      list(APPEND incs "${r}/include")
    endif()
  endforeach()
  list(APPEND libs ${CUDAToolkit_LIBRARY_DIR})
  list(APPEND incs ${CUDAToolkit_INCLUDE_DIRS})
  foreach(w ${CTGRAD_WHEEL_ROOTS})
    foreach(sub ${ARGN})
      list(APPEND libs "${w}/${sub}/lib")
      list(APPEND incs "${w}/${sub}/include")
    endforeach()
  endforeach()
  set(${out_lib} ${libs} PARENT_SCOPE)
  set(${out_inc} ${incs} PARENT_SCOPE)
endfunction()

ctgrad_cuda_hints(_cudnn_libs _cudnn_incs CUDNN_ROOT cudnn cu13)
find_library(CUDNN_LIB NAMES cudnn libcudnn.so.9 HINTS ${_cudnn_libs})
find_path(CUDNN_INCLUDE_DIR cudnn.h HINTS ${_cudnn_incs})
ctgrad_cuda_hints(_nccl_libs _nccl_incs NCCL_ROOT nccl cu13)
find_library(NCCL_LIB NAMES nccl libnccl.so.2 HINTS ${_nccl_libs})
find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${_nccl_incs})
if(NOT TARGET CUDA::cublas)
  ctgrad_cuda_hints(_cublas_libs _cublas_incs CUBLAS_ROOT cublas cu13)
  find_library(CTGRAD_CUBLAS_LIB NAMES cublas libcublas.so.13 libcublas.so.12 HINTS ${_cublas_libs})
  if(CTGRAD_CUBLAS_LIB)
    add_library(CUDA::cublas UNKNOWN IMPORTED)
    set_target_properties(CUDA::cublas PROPERTIES IMPORTED_LOCATION ${CTGRAD_CUBLAS_LIB})
  else()
    message(FATAL_ERROR "cuBLAS not found in the CUDA toolkit, CUBLAS_ROOT or NVIDIA's wheels")
  endif()
endif()

set(CTGRAD_CUDA_LIB_DIRS "")
foreach(lib CUDNN_LIB NCCL_LIB)
  if(${lib})
    get_filename_component(_d "${${lib}}" DIRECTORY)
    list(APPEND CTGRAD_CUDA_LIB_DIRS "${_d}")
  endif()
endforeach()
list(REMOVE_DUPLICATES CTGRAD_CUDA_LIB_DIRS)

foreach(what "cuDNN;CUDNN_LIB;CUDNN_INCLUDE_DIR" "NCCL;NCCL_LIB;NCCL_INCLUDE_DIR")
  list(GET what 0 name)
  list(GET what 1 lib)
  list(GET what 2 inc)
  if(${lib} AND ${inc})
    message(STATUS "ctgrad: ${name} found: ${${lib}} (headers ${${inc}})")
  else()
    message(STATUS "ctgrad: ${name} NOT found (library: ${${lib}}, headers: ${${inc}}); "
                   "set ${name}_ROOT or install NVIDIA's wheel")
  endif()
endforeach()
get_target_property(_cublas CUDA::cublas IMPORTED_LOCATION)
message(STATUS "ctgrad: cuBLAS = ${_cublas}; wheel roots searched: ${CTGRAD_WHEEL_ROOTS}")
# For scripts (bench/gpu_check.sh): the folders a native run needs on LD_LIBRARY_PATH.
string(REPLACE ";" ":" _dirs "${CTGRAD_CUDA_LIB_DIRS}")
file(WRITE "${CMAKE_BINARY_DIR}/cuda_lib_dirs.txt" "${_dirs}\n")
