# mipsel (mipsel-linux-gnu): see toolchain-debian-multiarch.cmake.
set(ENV{SG_CROSS_TRIPLE} mipsel-linux-gnu)
set(ENV{SG_CROSS_QEMU} qemu-mipsel-static)
include(${CMAKE_CURRENT_LIST_DIR}/toolchain-debian-multiarch.cmake)
