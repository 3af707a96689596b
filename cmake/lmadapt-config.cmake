# find_package(lmadapt) -> the imported target lmadapt::lmadapt (the shared library
# liblmadapt.so and include/lmadapt.h). For a static link use pkg-config:
#   pkg-config --static --libs lmadapt
include(${CMAKE_CURRENT_LIST_DIR}/lmadapt-targets.cmake)
