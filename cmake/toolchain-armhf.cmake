# armhf (arm-linux-gnueabihf): see toolchain-debian-multiarch.cmake.
set(ENV{SG_CROSS_TRIPLE} arm-linux-gnueabihf)
set(ENV{SG_CROSS_QEMU} qemu-arm-static)
include(${CMAKE_CURRENT_LIST_DIR}/toolchain-debian-multiarch.cmake)
