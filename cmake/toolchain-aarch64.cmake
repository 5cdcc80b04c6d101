# aarch64 (aarch64-linux-gnu): see toolchain-debian-multiarch.cmake.
set(ENV{SG_CROSS_TRIPLE} aarch64-linux-gnu)
set(ENV{SG_CROSS_QEMU} qemu-aarch64-static)
include(${CMAKE_CURRENT_LIST_DIR}/toolchain-debian-multiarch.cmake)
