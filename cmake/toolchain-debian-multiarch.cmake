# Cross-compiling with Debian's cross compilers (gcc-TRIPLE) and its
# multiarch library packages (libnftnl-dev:ARCH ... in /usr/lib/TRIPLE),
# run under qemu-user (qemu-user-static) by ctest.  Included by the
# per-architecture files (toolchain-aarch64.cmake ...), which set
# SG_CROSS_TRIPLE and SG_CROSS_QEMU in the environment first.
#
# The environment, not -D: try_compile() re-reads this file in a fresh
# project that does not see the -D values of the main one, but it does
# inherit the process environment.
if(NOT DEFINED ENV{SG_CROSS_TRIPLE})
  message(FATAL_ERROR "SG_CROSS_TRIPLE is not set (use cmake/toolchain-ARCH.cmake)")
endif()
set(_triple $ENV{SG_CROSS_TRIPLE})
string(REGEX REPLACE "-.*" "" _cpu "${_triple}")

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${_cpu})
set(CMAKE_C_COMPILER ${_triple}-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE ${_triple})
# Multiarch: the target's libraries are in /usr/lib/TRIPLE, the headers in
# /usr/include (and /usr/include/TRIPLE), beside the host's.  No sysroot;
# CMAKE_LIBRARY_ARCHITECTURE keeps find_library() in the right directory.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
# pkg-config must read the target's .pc files only.
set(ENV{PKG_CONFIG_LIBDIR}
    "/usr/lib/${_triple}/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
if(DEFINED ENV{SG_CROSS_QEMU})
  # qemu-user finds the target's ld.so and libraries at their multiarch
  # paths (libc6:ARCH), so no -L is needed.
  set(CMAKE_CROSSCOMPILING_EMULATOR $ENV{SG_CROSS_QEMU})
endif()
