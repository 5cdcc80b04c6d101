# s390x (s390x-linux-gnu): see toolchain-debian-multiarch.cmake.
set(ENV{SG_CROSS_TRIPLE} s390x-linux-gnu)
set(ENV{SG_CROSS_QEMU} qemu-s390x-static)
include(${CMAKE_CURRENT_LIST_DIR}/toolchain-debian-multiarch.cmake)
